"""JavaScript, TypeScript and TSX: scopes, ES/CommonJS imports, module resolution, skeletons.

Imports: ``import x from './a'`` → ``Import('./a', 'default', 'x')``; ``import {a as b} from
'../m'`` → ``Import('../m', 'a', 'b')``; ``import * as ns from './n'`` → ``Import('./n', alias='ns')``;
``const x = require('./x')`` / ``const {a, b: c} = require('./x')`` / ``import x = require('x')``;
``export {a as b} from './y'`` → ``Import('./y', 'a', 'b')``; ``export * from './z'`` → ``name='*'``;
``import('./lazy')`` → ``Import('./lazy')``.

Resolution (static): relative specifiers with extension probing (.ts .tsx .js .jsx .mjs .cjs
.d.ts, a ``.js`` written for a ``.ts`` source), directories through ``package.json``
(types/typings/module/main) or ``index.*``; bare specifiers through the nearest
``tsconfig.json``/``jsconfig.json`` (``compilerOptions.paths`` with one ``*``, ``baseUrl``,
relative ``extends``; comments and trailing commas allowed), then ``node_modules`` (and
``@types``) walking up from the importing file.

Definitions: top-level functions, classes, interfaces, type aliases, enums, namespaces,
``const``/``let``/``var`` (arrow/function bodies elided, long object/array values elided),
``declare`` forms, ``exports.x = …``; ``default``; re-exports (``export {x} from``, ``export *
from``, ``import {x} …; export {x}``) followed up to three hops.
"""

from __future__ import annotations

import json
from pathlib import Path

from tree_sitter import Node, Tree

from .base import Import, Scope, Workspace
from .brace import BraceLanguage, compiled_query, matches, read_text, text, unique_paths, walk_up

EXTENSIONS = (".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".d.ts")
_JS_TO_TS = {".js": (".ts", ".tsx", ".d.ts"), ".jsx": (".tsx",), ".mjs": (".mts", ".d.mts"), ".cjs": (".cts", ".d.cts")}
_CONFIG_NAMES = ("tsconfig.json", "jsconfig.json")
_IMPORT_QUERY = """
(import_statement) @import
(export_statement source: (string) @source) @export
(call_expression function: (identifier) @function arguments: (arguments . (string) @source)) @call
(call_expression function: (import) arguments: (arguments . (string) @source)) @dynamic
"""
_DECLARATIONS = frozenset(
    {"function_declaration", "generator_function_declaration", "class_declaration", "abstract_class_declaration",
     "interface_declaration", "type_alias_declaration", "enum_declaration", "internal_module", "module",
     "function_signature", "lexical_declaration", "variable_declaration", "class", "function_expression",
     "function", "generator_function", "arrow_function"}
)
_JSX_ELEMENTS = frozenset({"jsx_opening_element", "jsx_self_closing_element", "jsx_closing_element"})


class JavaScriptSupport(BraceLanguage):
    languages = ("javascript", "typescript", "typescriptreact")
    scope_kinds = {
        "class_declaration": "class",
        "abstract_class_declaration": "class",
        "class": "class",
        "interface_declaration": "interface",
        "enum_declaration": "enum",
        "internal_module": "namespace",
        "module": "namespace",
        "function_declaration": "function",
        "generator_function_declaration": "function",
        "function_expression": "function",
        "function": "function",
        "generator_function": "function",
        "arrow_function": "closure",
        "method_definition": "method",
    }
    function_types = frozenset(
        {"function_declaration", "generator_function_declaration", "function_expression", "function",
         "generator_function", "arrow_function", "method_definition", "class_static_block"}
    )
    body_types = frozenset({"statement_block"})
    long_value_types = frozenset({"object", "array"})
    chain_fields = {
        "member_expression": ("object", "property"),
        "nested_type_identifier": ("module", "name"),
        "nested_identifier": ("object", "property"),
    }
    wrapper_fields = {"generic_type": "name"}
    head_types = ("identifier", "type_identifier", "this", "shorthand_property_identifier")
    part_types = frozenset({"identifier", "type_identifier", "property_identifier", "private_property_identifier", "this"})
    name_ref_parents = frozenset({"generic_type", "new_expression", "decorator"}) | _JSX_ELEMENTS
    decl_fields = ("name", "pattern", "alias", "parameter")
    skip_ancestor_types = frozenset({"import_statement", "export_clause", "namespace_export"})
    namespace_types = frozenset({"internal_module", "module"})
    unsearched_types = frozenset({"export_statement"})  # re-exports are followed, not returned
    noise = frozenset(
        {"this", "super", "undefined", "NaN", "Infinity", "console", "require", "module", "exports", "window",
         "document", "globalThis", "process", "Math", "JSON", "Object", "Array", "Promise", "String", "Number",
         "Boolean", "Error", "TypeError", "Symbol", "Map", "Set", "WeakMap", "Date", "RegExp", "Record", "Partial",
         "Readonly", "Pick", "Omit", "Array", "ReadonlyArray", "setTimeout", "clearTimeout", "arguments"}
    )
    scope_keywords = {
        "class": "class", "interface": "interface", "enum": "enum", "namespace": "namespace",
        "function": "function",
    }

    # -- declarations -----------------------------------------------------------------------------

    def unwrap(self, node: Node) -> list[Node] | None:
        kind = node.type
        if kind == "export_statement":
            if node.child_by_field_name("source") is not None:
                return None  # a re-export: kept whole, followed by definition()
            inner = node.child_by_field_name("declaration") or node.child_by_field_name("value")
            return [inner] if inner is not None else None
        if kind == "ambient_declaration":
            return [c for c in node.named_children if c.type not in self.comment_types]
        if kind == "expression_statement":
            inner = node.named_children[0] if node.named_children else None
            if inner is not None and inner.type in ("internal_module", "module"):
                return [inner]
        return None

    def outer(self, node: Node) -> Node:
        current = node
        while current.parent is not None and (
            current.parent.type in ("export_statement", "ambient_declaration")
            or (current.parent.type == "expression_statement" and current.type in ("internal_module", "module"))
        ):
            current = current.parent
        return current

    def names(self, node: Node, source: bytes) -> list[str]:
        kind = node.type
        if kind in ("lexical_declaration", "variable_declaration"):
            out = []
            for declarator in node.named_children:
                if declarator.type == "variable_declarator":
                    name = declarator.child_by_field_name("name")
                    if name is not None and name.type == "identifier":
                        out.append(text(name, source))
            return out
        if kind == "field_definition":
            return [text(node.child_by_field_name("property"), source)]
        if kind == "pair":
            key = node.child_by_field_name("key")
            return [text(key, source).strip("'\"")] if key is not None else []
        if kind == "expression_statement":
            return self._commonjs_names(node, source)
        if kind == "module":
            name = node.child_by_field_name("name")
            return [text(name, source).strip("'\"")] if name is not None else []
        return super().names(node, source)

    def _commonjs_names(self, node: Node, source: bytes) -> list[str]:
        """``exports.x = …`` / ``module.exports.x = …`` declare ``x``."""
        assignment = node.named_children[0] if node.named_children else None
        if assignment is None or assignment.type != "assignment_expression":
            return []
        left = assignment.child_by_field_name("left")
        if left is None or left.type != "member_expression":
            return []
        target = text(left.child_by_field_name("object"), source)
        if target in ("exports", "module.exports"):
            return [text(left.child_by_field_name("property"), source)]
        return []

    def body(self, node: Node) -> Node | None:
        if node.type in ("lexical_declaration", "variable_declaration"):
            return None
        return super().body(node)

    def members(self, container: Node, source: bytes) -> list[Node]:
        if container.type in ("lexical_declaration", "variable_declaration"):
            declarators = [c for c in container.named_children if c.type == "variable_declarator"]
            value = declarators[0].child_by_field_name("value") if len(declarators) == 1 else None
            if value is None:
                return []
            if value.type == "object":
                return [c for c in value.named_children if c.type in ("pair", "method_definition")]
            if value.type == "class":
                container = value
            else:
                return []
        return [n for n in super().members(container, source) if n.type not in self.comment_types]

    def scope(self, node: Node, kind: str, source: bytes) -> Scope | None:
        if node.type in ("arrow_function", "function_expression", "function", "generator_function"):
            body = node.child_by_field_name("body")
            if body is None or body.type != "statement_block":
                return None
            name = self._bound_name(node, source)
            start = node.start_byte
            declarator = node.parent
            if declarator is not None and declarator.type == "variable_declarator" and declarator.parent is not None:
                start = self.outer(declarator.parent).start_byte  # `export const f = () => {`
            header = source[start:body.start_byte + 1].decode("utf-8", "replace")
            return Scope("function" if name else "closure", name, header, start, node.end_byte)
        return super().scope(node, kind, source)

    def _bound_name(self, node: Node, source: bytes) -> str:
        """``f`` for ``const f = () => {…}``, ``key: function () {…}``, ``x.f = function …``."""
        own = node.child_by_field_name("name")
        if own is not None:
            return text(own, source)
        parent = node.parent
        if parent is None:
            return ""
        if parent.type == "variable_declarator":
            name = parent.child_by_field_name("name")
            return text(name, source) if name is not None and name.type == "identifier" else ""
        if parent.type == "pair":
            return text(parent.child_by_field_name("key"), source).strip("'\"")
        if parent.type in ("public_field_definition", "field_definition"):
            return self.names(parent, source)[0] if self.names(parent, source) else ""
        if parent.type == "assignment_expression":
            left = parent.child_by_field_name("left")
            if left is not None and left.type == "member_expression":
                return text(left.child_by_field_name("property"), source)
            return text(left, source) if left is not None and left.type == "identifier" else ""
        return ""

    def _is_declaration(self, node: Node, parent: Node) -> bool:
        kind = parent.type
        if kind in ("array_pattern", "rest_pattern", "object_pattern"):
            return True  # `const [a, ...b] = …`
        if kind == "pair_pattern":
            return parent.child_by_field_name("value") == node  # `const {key: local} = …`
        if kind in ("assignment_pattern", "for_in_statement"):
            return parent.child_by_field_name("left") == node  # defaults, `for (const s of xs)`
        return super()._is_declaration(node, parent)

    def _reference(self, head: Node, source: bytes, end_byte: int):
        parent = head.parent
        if parent is not None and parent.type in _JSX_ELEMENTS and text(head, source)[:1].islower():
            return None  # an intrinsic element (<div>)
        return super()._reference(head, source, end_byte)

    def in_outline(self, node: Node) -> bool:
        # declarations, re-exports and `exports.x = …`; no imports or top-level statements
        return node.type in _DECLARATIONS or node.type in ("export_statement", "expression_statement")

    def outline_item(self, node: Node, source: bytes) -> str:
        if node.type == "expression_statement" and not self._commonjs_names(node, source):
            return ""
        return self.render(node, source)

    # -- definitions ------------------------------------------------------------------------------

    def find(self, root: Node, name: str, source: bytes) -> Node | None:
        if name == "default":
            for statement in root.named_children:
                if statement.type == "export_statement" and any(c.type == "default" for c in statement.children):
                    inner = statement.child_by_field_name("declaration") or statement.child_by_field_name("value")
                    if inner is not None and inner.type == "identifier":
                        return self.find(root, text(inner, source), source) or statement
                    return inner or statement
            return None
        return super().find(root, name, source)

    def reexports(self, tree: Tree, name: str, source: bytes) -> list[tuple[Import, str]]:
        root = tree.root_node
        forwards: list[tuple[str, str]] = []
        stars: list[tuple[str, str]] = []
        local_exports: dict[str, str] = {}
        for statement in root.named_children:
            if statement.type != "export_statement":
                continue
            source_node = statement.child_by_field_name("source")
            module = self._string(source_node, source) if source_node is not None else None
            clause = next((c for c in statement.named_children if c.type == "export_clause"), None)
            if clause is not None:
                for spec in clause.named_children:
                    if spec.type != "export_specifier":
                        continue
                    original = self._string_or_text(spec.child_by_field_name("name"), source)
                    alias = spec.child_by_field_name("alias")
                    exported = self._string_or_text(alias, source) if alias is not None else original
                    if exported != name:
                        continue
                    if module is not None:
                        forwards.append((module, original))
                    else:
                        local_exports[exported] = original
            elif module is not None and any(c.type == "*" for c in statement.children):
                if not any(c.type == "namespace_export" for c in statement.named_children):
                    stars.append((module, name))
        wanted = local_exports.get(name, name)
        for imp in self.imports(tree, source):
            if imp.local_name == wanted and imp.name not in (None, "*"):
                forwards.append((imp.module, imp.name))
        return [(Import(module=module), original) for module, original in forwards + stars]

    # -- imports ----------------------------------------------------------------------------------

    def imports(self, tree: Tree, source: bytes) -> list[Import]:
        query = compiled_query(tree.language, _IMPORT_QUERY)
        found: list[Import] = []
        for match in matches(query, tree.root_node):
            if "import" in match:
                found.extend(self._import_statement(match["import"][0], source))
            elif "export" in match:
                found.extend(self._reexport(match["export"][0], match["source"][0], source))
            elif "call" in match:
                if text(match["function"][0], source) == "require":
                    found.extend(self._require(match["call"][0], match["source"][0], source))
            elif "dynamic" in match:
                found.append(Import(module=self._string(match["source"][0], source), line=match["dynamic"][0].start_point.row))
        seen = set()
        unique = []
        for imp in sorted(found, key=lambda i: i.line):
            if imp.module and imp not in seen:
                seen.add(imp)
                unique.append(imp)
        return unique

    @staticmethod
    def _string(node: Node | None, source: bytes) -> str:
        if node is None:
            return ""
        fragment = next((c for c in node.named_children if c.type == "string_fragment"), None)
        return text(fragment, source) if fragment is not None else text(node, source).strip("'\"`")

    def _string_or_text(self, node: Node | None, source: bytes) -> str:
        if node is None:
            return ""
        return self._string(node, source) if node.type == "string" else text(node, source)

    def _import_statement(self, statement: Node, source: bytes) -> list[Import]:
        line = statement.start_point.row
        source_node = statement.child_by_field_name("source")
        require = next((c for c in statement.named_children if c.type == "import_require_clause"), None)
        if require is not None:
            module = self._string(require.child_by_field_name("source"), source)
            alias = next((c for c in require.named_children if c.type == "identifier"), None)
            return [Import(module=module, alias=text(alias, source) or None, line=line)]
        module = self._string(source_node, source)
        clause = next((c for c in statement.named_children if c.type == "import_clause"), None)
        if clause is None:
            return [Import(module=module, line=line)]
        out = []
        for part in clause.named_children:
            if part.type == "identifier":
                out.append(Import(module=module, name="default", alias=text(part, source), line=line))
            elif part.type == "namespace_import":
                alias = next((c for c in part.named_children if c.type == "identifier"), None)
                out.append(Import(module=module, alias=text(alias, source) or None, line=line))
            elif part.type == "named_imports":
                for spec in part.named_children:
                    if spec.type != "import_specifier":
                        continue
                    name = self._string_or_text(spec.child_by_field_name("name"), source)
                    alias = spec.child_by_field_name("alias")
                    out.append(Import(module=module, name=name, alias=text(alias, source) if alias is not None else None, line=line))
        return out

    def _reexport(self, statement: Node, source_node: Node, source: bytes) -> list[Import]:
        module = self._string(source_node, source)
        line = statement.start_point.row
        clause = next((c for c in statement.named_children if c.type == "export_clause"), None)
        if clause is not None:
            out = []
            for spec in clause.named_children:
                if spec.type == "export_specifier":
                    name = self._string_or_text(spec.child_by_field_name("name"), source)
                    alias = spec.child_by_field_name("alias")
                    out.append(Import(module=module, name=name, alias=self._string_or_text(alias, source) if alias is not None else None, line=line))
            return out
        namespace = next((c for c in statement.named_children if c.type == "namespace_export"), None)
        if namespace is not None:
            alias = next((c for c in namespace.named_children if c.type in ("identifier", "string")), None)
            return [Import(module=module, alias=self._string_or_text(alias, source) or None, line=line)]
        return [Import(module=module, name="*", line=line)]

    def _require(self, call: Node, source_node: Node, source: bytes) -> list[Import]:
        module = self._string(source_node, source)
        line = call.start_point.row
        parent = call.parent
        member = None
        if parent is not None and parent.type == "member_expression" and parent.child_by_field_name("object") == call:
            member = text(parent.child_by_field_name("property"), source)
            parent = parent.parent
        if parent is None or parent.type != "variable_declarator":
            return [Import(module=module, name=member, line=line)]
        target = parent.child_by_field_name("name")
        if target is None:
            return [Import(module=module, line=line)]
        if target.type == "identifier":
            return [Import(module=module, name=member, alias=text(target, source), line=line)]
        if target.type == "object_pattern" and member is None:
            out = []
            for part in target.named_children:
                if part.type == "shorthand_property_identifier_pattern":
                    out.append(Import(module=module, name=text(part, source), line=line))
                elif part.type == "pair_pattern":
                    key = text(part.child_by_field_name("key"), source)
                    value = part.child_by_field_name("value")
                    alias = text(value, source) if value is not None and value.type == "identifier" else None
                    out.append(Import(module=module, name=key, alias=alias, line=line))
            return out
        return [Import(module=module, line=line)]

    # -- resolution -------------------------------------------------------------------------------

    def resolve(self, imp: Import, from_path: Path, workspace: Workspace) -> list[Path]:
        module = imp.module
        if not module:
            return []
        if module.startswith(("./", "../")) or module in (".", ".."):
            return probe(from_path.parent / module, workspace)
        if module.startswith("/"):
            return probe(Path(module), workspace)
        config = find_config(from_path, workspace)
        if config is not None:
            for candidate in config.candidates(module):
                found = probe(candidate, workspace)
                if found:
                    return found
        return self._node_modules(module, from_path, workspace)

    @staticmethod
    def _node_modules(module: str, from_path: Path, workspace: Workspace) -> list[Path]:
        parts = module.split("/")
        package = "/".join(parts[:2]) if module.startswith("@") else parts[0]
        types_name = package[1:].replace("/", "__") if package.startswith("@") else package
        rest = module[len(package):].lstrip("/")
        for directory in walk_up(from_path.parent):
            modules = directory / "node_modules"
            if not workspace.is_dir(modules):
                continue
            for base in (modules / package, modules / "@types" / types_name):
                if workspace.is_dir(base):
                    found = probe(base / rest if rest else base, workspace)
                    if found:
                        return found
        return []


# -- module resolution -------------------------------------------------------------------------


def probe(base: Path, workspace: Workspace) -> list[Path]:
    """The files an import of ``base`` (without extension, or with one) may mean, best first."""
    found: list[Path] = []
    name = base.name
    if any(name.endswith(ext) for ext in EXTENSIONS + (".mts", ".cts", ".json")) and workspace.is_file(base):
        found.append(base)
    suffix = base.suffix
    if suffix in _JS_TO_TS:
        stem = base.with_suffix("")
        found += [stem.with_name(stem.name + ext) for ext in _JS_TO_TS[suffix] if workspace.is_file(stem.with_name(stem.name + ext))]
    if name:
        found += [base.with_name(name + ext) for ext in EXTENSIONS if workspace.is_file(base.with_name(name + ext))]
    if workspace.is_dir(base):
        entry = _package_entry(base, workspace)
        if entry is not None:
            found += [p for p in probe(entry, workspace) if p not in found] if not workspace.is_file(entry) else [entry]
        found += [base / f"index{ext}" for ext in EXTENSIONS if workspace.is_file(base / f"index{ext}")]
    return unique_paths(found)


def _package_entry(directory: Path, workspace: Workspace) -> Path | None:
    manifest = directory / "package.json"
    if not workspace.is_file(manifest):
        return None
    data = loads_lenient(read_text(manifest) or "")
    if not isinstance(data, dict):
        return None
    for key in ("types", "typings", "module", "main"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return directory / value
    return None


class TsConfig:
    """The module-resolution part of a tsconfig.json (after ``extends``)."""

    def __init__(self, path: Path, base_url: Path | None, paths: dict[str, list[str]], paths_base: Path):
        self.path = path
        self.base_url = base_url
        self.paths = paths
        self.paths_base = paths_base

    def candidates(self, module: str) -> list[Path]:
        out: list[Path] = []
        best: tuple[int, str, str] | None = None  # (prefix length, pattern, star match)
        for pattern in self.paths:
            if "*" in pattern:
                prefix, _, suffix = pattern.partition("*")
                if module.startswith(prefix) and module.endswith(suffix) and len(module) >= len(prefix) + len(suffix):
                    star = module[len(prefix):len(module) - len(suffix)]
                    if best is None or len(prefix) > best[0]:
                        best = (len(prefix), pattern, star)
            elif pattern == module:
                best = (len(pattern) + 1, pattern, "")
                break
        if best is not None:
            base = self.base_url or self.paths_base
            for target in self.paths[best[1]]:
                if isinstance(target, str):
                    out.append(base / target.replace("*", best[2]))
        if self.base_url is not None:
            out.append(self.base_url / module)
        return out


def find_config(from_path: Path, workspace: Workspace) -> TsConfig | None:
    for directory in walk_up(from_path.parent):
        for name in _CONFIG_NAMES:
            candidate = directory / name
            if workspace.is_file(candidate):
                return load_config(candidate)
    return None


def load_config(path: Path, depth: int = 0) -> TsConfig | None:
    data = loads_lenient(read_text(path) or "")
    if not isinstance(data, dict):
        return None
    base = None
    extends = data.get("extends")
    if isinstance(extends, list):
        extends = extends[-1] if extends else None
    if isinstance(extends, str) and extends.startswith(".") and depth < 5:
        parent_path = path.parent / extends
        if parent_path.suffix != ".json":
            parent_path = parent_path.with_name(parent_path.name + ".json")
        base = load_config(parent_path, depth + 1)
    options = data.get("compilerOptions") if isinstance(data.get("compilerOptions"), dict) else {}
    base_url = base.base_url if base else None
    if isinstance(options.get("baseUrl"), str):
        base_url = path.parent / options["baseUrl"]
    paths = base.paths if base else {}
    paths_base = base.paths_base if base else path.parent
    if isinstance(options.get("paths"), dict):
        paths = {k: v for k, v in options["paths"].items() if isinstance(v, list)}
        paths_base = path.parent
    return TsConfig(path, base_url, paths, paths_base)


def loads_lenient(content: str) -> object:
    """JSON with comments and trailing commas (tsconfig.json); None when it is not JSON."""
    out: list[str] = []
    index, length = 0, len(content)
    while index < length:
        char = content[index]
        if char == '"':
            end = index + 1
            while end < length and content[end] != '"':
                end += 2 if content[end] == "\\" else 1
            out.append(content[index:end + 1])
            index = end + 1
        elif (after := _comment_end(content, index)) is not None:
            index = after
        elif char == ",":
            following = _next_token(content, index + 1)
            if following >= length or content[following] not in "}]":
                out.append(char)
            index += 1
        else:
            out.append(char)
            index += 1
    try:
        return json.loads("".join(out))
    except ValueError:
        return None


def _comment_end(content: str, index: int) -> int | None:
    """Where a comment starting at ``index`` ends (a line comment before its newline); None when
    none starts there."""
    if content.startswith("//", index):
        newline = content.find("\n", index)
        return len(content) if newline == -1 else newline
    if content.startswith("/*", index):
        close = content.find("*/", index + 2)
        return len(content) if close == -1 else close + 2
    return None


def _next_token(content: str, index: int) -> int:
    """The first index from ``index`` on that is neither blank nor inside a comment."""
    while index < len(content):
        if content[index].isspace():
            index += 1
        elif (after := _comment_end(content, index)) is not None:
            index = after
        else:
            break
    return index
