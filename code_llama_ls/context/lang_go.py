"""Go: scopes, imports, package resolution through go.mod, skeletons with a type's methods.

Imports: ``import "mod/path/pkg"`` (single, grouped, aliased) → ``Import("mod/path/pkg",
alias="pkg")`` — the alias is the explicit one, else the path's last element (a ``/vN`` major
version, a ``.vN`` suffix, a ``go-`` prefix and a ``-go`` suffix dropped); ``import . "x"`` →
``name="*"``; ``import _ "x"`` → ``alias="_"``.

Resolution (static): the nearest ``go.mod``'s ``module`` line maps a path inside the module to
its directory (local ``replace … => ./dir`` directives and ``vendor/`` too), then the
``search_paths("go")`` roots (GOROOT/src, GOPATH/src) are tried; the package's ``.go`` files
without ``_test.go`` are returned, the file named like the package first. ``Import(".")`` asks
for the importing file's own package: the other ``.go`` files of its directory (``_test.go``
files only when the importing file is one).

Definitions: functions, types (struct fields, interface methods) followed by the methods declared
on them in the same file, const/var blocks; ``member(owner, name)`` finds a method by receiver,
an interface method or a struct field.
"""

from __future__ import annotations

from pathlib import Path

from tree_sitter import Node, Tree

from .base import Definition, Import, ParsedFile, Scope, Workspace
from .brace import BraceLanguage, captures, compiled_query, list_dir, read_text, text, unique_paths, walk_up

_IMPORT_QUERY = "(import_spec) @spec"


class GoSupport(BraceLanguage):
    languages = ("go",)
    scope_kinds = {
        "function_declaration": "function",
        "method_declaration": "method",
        "func_literal": "closure",
        "type_spec": "struct",
    }
    function_types = frozenset({"function_declaration", "method_declaration", "func_literal"})
    body_types = frozenset({"block"})
    long_value_types = frozenset({"literal_value"})
    chain_fields = {
        "selector_expression": ("operand", "field"),
        "qualified_type": ("package", "name"),
    }
    wrapper_fields = {"generic_type": "type"}
    head_types = ("identifier", "type_identifier", "package_identifier")
    part_types = frozenset({"identifier", "type_identifier", "field_identifier", "package_identifier"})
    decl_fields = ("name", "receiver")
    skip_ancestor_types = frozenset({"import_declaration", "package_clause"})
    noise = frozenset(
        {"len", "cap", "make", "new", "append", "copy", "delete", "panic", "recover", "print", "println", "close",
         "min", "max", "clear", "nil", "true", "false", "iota", "_", "bool", "byte", "rune", "string", "error", "any",
         "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "uintptr",
         "float32", "float64", "complex64", "complex128", "comparable"}
    )
    scope_keywords = {"func": "function", "struct": "struct", "interface": "interface"}

    # -- scopes -----------------------------------------------------------------------------------

    def module_scope(self, tree: Tree, source: bytes) -> Scope:
        clause = next((c for c in tree.root_node.named_children if c.type == "package_clause"), None)
        if clause is None:
            return super().module_scope(tree, source)
        name = next((c for c in clause.named_children if c.type == "package_identifier"), None)
        return Scope("module", text(name, source), text(clause, source), 0, len(source))

    def scope(self, node: Node, kind: str, source: bytes) -> Scope | None:
        if node.type != "type_spec":
            return super().scope(node, kind, source)
        type_node = node.child_by_field_name("type")
        if type_node is None or type_node.type not in ("struct_type", "interface_type"):
            return None
        brace = next((c for c in self._tokens(type_node) if c.type == "{"), None)
        if brace is None:
            return None
        start = self.outer(node).start_byte
        header = source[start:brace.end_byte].decode("utf-8", "replace")
        kind = "struct" if type_node.type == "struct_type" else "interface"
        return Scope(kind, text(node.child_by_field_name("name"), source), header, start, node.end_byte)

    @staticmethod
    def _tokens(node: Node) -> list[Node]:
        if node.type == "struct_type":
            fields = next((c for c in node.named_children if c.type == "field_declaration_list"), None)
            return fields.children if fields is not None else []
        return node.children

    def body(self, node: Node) -> Node | None:
        if node.type == "type_spec":
            type_node = node.child_by_field_name("type")
            if type_node is not None and type_node.type in ("struct_type", "interface_type"):
                return type_node
            return None
        return super().body(node)

    def _classify(self, segment: list[Node], source: bytes):
        found = super()._classify(segment, source)
        if found is not None and found[0] == "function":
            after = segment[segment.index(found[2]) + 1:] if found[2] in segment else []
            if after and after[0].type == "(":
                return "method", found[1], found[2]  # func (r *T) Name(…) {
        return found

    def _is_declaration(self, node: Node, parent: Node) -> bool:
        if parent.type == "expression_list":
            holder = parent.parent
            if holder is not None and holder.type in ("short_var_declaration", "range_clause") and holder.child_by_field_name("left") == parent:
                return True  # `x, err := …`, `for i := range …`
        return super()._is_declaration(node, parent)

    # -- names ------------------------------------------------------------------------------------

    def outer(self, node: Node) -> Node:
        parent = node.parent
        if node.type in ("type_spec", "type_alias") and parent is not None and parent.type == "type_declaration":
            if len([c for c in parent.named_children if c.type in ("type_spec", "type_alias")]) == 1:
                return parent
        return node

    def names(self, node: Node, source: bytes) -> list[str]:
        kind = node.type
        if kind in ("type_declaration", "const_declaration", "var_declaration"):
            out: list[str] = []
            for spec in node.named_children:
                if spec.type in ("type_spec", "type_alias", "const_spec", "var_spec", "var_spec_list"):
                    for inner in ([spec] if spec.type != "var_spec_list" else spec.named_children):
                        out += [text(n, source) for n in inner.children_by_field_name("name")]
            return out
        if kind in ("field_declaration", "const_spec", "var_spec"):
            names = [text(n, source) for n in node.children_by_field_name("name")]
            if not names and kind == "field_declaration":  # an embedded type
                embedded = node.child_by_field_name("type")
                return [text(embedded, source).lstrip("*").rsplit(".", 1)[-1]] if embedded is not None else []
            return names
        return super().names(node, source)

    def receiver(self, method: Node, source: bytes) -> str:
        """``Foo`` for ``func (f *Foo[T]) M()``."""
        receiver = method.child_by_field_name("receiver")
        if receiver is None:
            return ""
        parameter = next((c for c in receiver.named_children if c.type == "parameter_declaration"), None)
        node = parameter.child_by_field_name("type") if parameter is not None else None
        while node is not None:
            if node.type == "type_identifier":
                return text(node, source)
            if node.type == "pointer_type":
                node = node.named_children[0] if node.named_children else None
            elif node.type == "generic_type":
                node = node.child_by_field_name("type")
            else:
                return ""
        return ""

    def in_outline(self, node: Node) -> bool:
        return node.type not in ("package_clause", "import_declaration", "comment", "ERROR")

    # -- definitions ------------------------------------------------------------------------------

    def _spec(self, declaration: Node, name: str, source: bytes) -> Node | None:
        for spec in declaration.named_children:
            if spec.type in ("type_spec", "type_alias") and name in [text(n, source) for n in spec.children_by_field_name("name")]:
                return spec
        return None

    def methods(self, root: Node, owner: str, source: bytes) -> list[Node]:
        return [n for n in root.named_children if n.type == "method_declaration" and self.receiver(n, source) == owner]

    def definition(self, parsed: ParsedFile, name: str, workspace: Workspace) -> Definition | None:
        if parsed.tree is None:
            return None
        root = parsed.tree.root_node
        source = parsed.source
        node = next((n for n in self.items(root) if n.type != "method_declaration" and name in self.names(n, source)), None)
        if node is None:
            return None
        if node.type != "type_declaration":
            return self.definition_of(parsed, node, name)
        spec = self._spec(node, name, source) or node
        outer = self.outer(spec)
        rendered = self.render(spec, source) if outer == spec else self.render(outer, source)
        if outer == spec:
            rendered = f"type {rendered}"
        documentation = self.doc(outer, source) if outer != spec else (self.doc(spec, source) or self.doc(node, source))
        methods = [self.render(m, source) for m in self.methods(root, name, source)]
        skeleton = "\n".join(part for part in (documentation, rendered, *methods) if part)
        return Definition(parsed.path, name, skeleton, outer.start_point.row)

    def member(self, parsed: ParsedFile, owner: str, name: str) -> Definition | None:
        if parsed.tree is None:
            return None
        root = parsed.tree.root_node
        source = parsed.source
        for method in self.methods(root, owner, source):
            if text(method.child_by_field_name("name"), source) == name:
                return self.definition_of(parsed, method, f"{owner}.{name}")
        declaration = next((n for n in self.items(root) if n.type == "type_declaration" and owner in self.names(n, source)), None)
        spec = self._spec(declaration, owner, source) if declaration is not None else None
        type_node = spec.child_by_field_name("type") if spec is not None else None
        if type_node is None:
            return None
        if type_node.type == "struct_type":
            fields = next((c for c in type_node.named_children if c.type == "field_declaration_list"), None)
            candidates = fields.named_children if fields is not None else []
        else:
            candidates = type_node.named_children
        for candidate in candidates:
            if candidate.type in ("field_declaration", "method_elem", "method_spec") and name in self.names(candidate, source):
                return self.definition_of(parsed, candidate, f"{owner}.{name}")
        return None

    # -- imports ----------------------------------------------------------------------------------

    def imports(self, tree: Tree, source: bytes) -> list[Import]:
        query = compiled_query(tree.language, _IMPORT_QUERY)
        found = []
        for spec in captures(query, tree.root_node).get("spec", []):
            path_node = spec.child_by_field_name("path")
            if path_node is None:
                continue
            path = text(path_node, source).strip('"`')
            if not path:
                continue
            name_node = spec.child_by_field_name("name")
            line = spec.start_point.row
            if name_node is None:
                found.append(Import(module=path, alias=package_name_guess(path), line=line))
            elif name_node.type == "dot":
                found.append(Import(module=path, name="*", line=line))
            else:
                found.append(Import(module=path, alias=text(name_node, source), line=line))
        return sorted(found, key=lambda imp: imp.line)

    # -- resolution -------------------------------------------------------------------------------

    def resolve(self, imp: Import, from_path: Path, workspace: Workspace) -> list[Path]:
        if imp.module in (".", ""):
            include_tests = from_path.name.endswith("_test.go")
            return [p for p in self.package_files(from_path.parent, workspace, include_tests) if p != from_path]
        for directory in self.package_dirs(imp.module, from_path, workspace):
            files = self.package_files(directory, workspace, False)
            if files:
                return files
        return []

    def package_dirs(self, import_path: str, from_path: Path, workspace: Workspace) -> list[Path]:
        candidates: list[Path] = []
        gomod = next((d / "go.mod" for d in walk_up(from_path.parent) if workspace.is_file(d / "go.mod")), None)
        if gomod is not None:
            module, replaces = parse_go_mod(read_text(gomod) or "")
            for prefix, target in sorted(replaces.items(), key=lambda item: -len(item[0])):
                if import_path == prefix or import_path.startswith(prefix + "/"):
                    candidates.append(gomod.parent / target / import_path[len(prefix):].lstrip("/"))
            if module and (import_path == module or import_path.startswith(module + "/")):
                candidates.append(gomod.parent / import_path[len(module):].lstrip("/"))
            candidates.append(gomod.parent / "vendor" / import_path)
        for root in workspace.search_paths("go"):
            candidates += [root / import_path, root / "src" / import_path]
        return [d for d in unique_paths(candidates) if workspace.is_dir(d)]

    @staticmethod
    def package_files(directory: Path, workspace: Workspace, include_tests: bool) -> list[Path]:
        files = [
            p for p in list_dir(directory)
            if p.suffix == ".go" and (include_tests or not p.name.endswith("_test.go")) and workspace.is_file(p)
        ]
        files.sort(key=lambda p: (p.stem != directory.name, p.name.endswith("_test.go"), p.name))
        return files


def package_name_guess(import_path: str) -> str:
    """The package name an import path usually binds (``gopkg.in/yaml.v3`` → ``yaml``)."""
    parts = [p for p in import_path.split("/") if p]
    if not parts:
        return import_path
    last = parts[-1]
    if len(parts) > 1 and last.startswith("v") and last[1:].isdigit():
        last = parts[-2]
    if "." in last:
        head, _, tail = last.rpartition(".")
        if tail.startswith("v") and tail[1:].isdigit():
            last = head
    if last.startswith("go-"):
        last = last[3:]
    if last.endswith("-go"):
        last = last[:-3]
    return last.replace("-", "_").replace(".", "_")


def parse_go_mod(content: str) -> tuple[str, dict[str, str]]:
    """The ``module`` path and local ``replace`` directives (path → relative dir) of a go.mod."""
    module = ""
    replaces: dict[str, str] = {}
    in_replace = False
    for raw in content.splitlines():
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        if line.startswith("module"):
            module = line[len("module"):].strip().strip('"')
            continue
        if line.startswith("replace ("):
            in_replace = True
            continue
        if in_replace and line == ")":
            in_replace = False
            continue
        if line.startswith("replace "):
            line = line[len("replace "):]
        elif not in_replace:
            continue
        if "=>" not in line:
            continue
        left, right = (side.split() for side in line.split("=>", 1))
        if left and right and right[0].startswith((".", "/")):
            replaces[left[0]] = right[0]
    return module, replaces
