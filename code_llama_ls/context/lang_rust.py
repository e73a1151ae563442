"""Rust: scopes, `use`/`mod` imports, module-tree resolution and item skeletons.

Imports: ``mod x;`` → ``Import("self::x", alias="x")``; ``use crate::a::b::{C, d as e}`` →
``Import("crate::a::b", "C")`` and ``Import("crate::a::b", "d", "e")``; ``use a::b::*`` →
``name="*"``; ``use a::{self}`` binds ``a``. Resolution follows the module tree statically:
``crate::`` from the crate root (``src/lib.rs``, else ``src/main.rs``, next to the nearest
``Cargo.toml``; the crate's own name and other crates of the workspace roots work the same),
``self::``/``super::`` from the file's module (``mod.rs``/``lib.rs``/``main.rs`` own their
directory, ``a.rs`` owns ``a/``), a first segment naming a ``mod`` of the file as ``self::``.
Each segment maps to ``x.rs`` or ``x/mod.rs``; the files of the deepest module reached are
returned (the named item's own module file first when the item is a module). External crates
(std, dependencies) are not resolved.

Definitions: items (fn, struct, enum, union, trait, type, const, static, macro_rules!, mod); a
type's skeleton is followed by the ``impl`` blocks for it in the same file (fn bodies elided), and
``pub use`` re-exports are followed up to three hops.
"""

from __future__ import annotations

from pathlib import Path

from tree_sitter import Node, Tree

from .base import Definition, Import, ParsedFile, Workspace
from .brace import BraceLanguage, compiled_query, matches, list_dir, read_text, text, unique_paths, walk_up

_IMPORT_QUERY = """
(use_declaration argument: (_) @argument) @use
(mod_item name: (identifier) @name !body) @mod
"""
_CRATE_ROOT_DIRS = {"bin", "examples", "tests", "benches"}


class RustSupport(BraceLanguage):
    languages = ("rust",)
    comment_types = frozenset({"line_comment", "block_comment"})
    doc_prefix_types = frozenset({"attribute_item"})
    scope_kinds = {
        "mod_item": "module",
        "struct_item": "struct",
        "enum_item": "enum",
        "union_item": "union",
        "trait_item": "trait",
        "impl_item": "impl",
        "function_item": "function",
        "closure_expression": "closure",
    }
    function_types = frozenset({"function_item", "closure_expression"})
    body_types = frozenset({"block"})
    long_value_types = frozenset({"array_expression"})
    chain_fields = {
        "scoped_identifier": ("path", "name"),
        "scoped_type_identifier": ("path", "name"),
        "field_expression": ("value", "field"),
    }
    wrapper_fields = {"generic_type": "type", "generic_function": "function"}
    head_types = ("identifier", "type_identifier", "self", "crate", "super")
    part_types = frozenset({"identifier", "type_identifier", "field_identifier", "self", "crate", "super"})
    name_ref_parents = frozenset({"struct_expression", "macro_invocation"})
    decl_fields = ("name", "pattern", "alias")
    skip_ancestor_types = frozenset({"use_declaration", "attribute_item", "inner_attribute_item"})
    namespace_types = frozenset({"mod_item"})
    unsearched_types = frozenset({"impl_item"})  # an impl shares its type's name; the type is the declaration
    noise = frozenset(
        {"self", "Self", "super", "crate", "Some", "None", "Ok", "Err", "Option", "Result", "Vec", "String", "Box",
         "Rc", "Arc", "std", "core", "alloc", "println", "print", "eprintln", "format", "vec", "panic", "assert",
         "assert_eq", "assert_ne", "write", "writeln", "todo", "unimplemented", "unreachable", "dbg"}
    )
    scope_keywords = {
        "fn": "function", "struct": "struct", "enum": "enum", "union": "union", "trait": "trait",
        "impl": "impl", "mod": "module",
    }

    # -- names ------------------------------------------------------------------------------------

    def names(self, node: Node, source: bytes) -> list[str]:
        if node.type == "impl_item":
            return [self._type_name(node.child_by_field_name("type"), source)]
        return super().names(node, source)

    def _type_name(self, node: Node | None, source: bytes) -> str:
        """``Foo`` for ``Foo``, ``Foo<T>``, ``crate::m::Foo<T>``, ``&Foo``."""
        while node is not None:
            if node.type == "type_identifier":
                return text(node, source)
            if node.type == "generic_type":
                node = node.child_by_field_name("type")
            elif node.type == "scoped_type_identifier":
                node = node.child_by_field_name("name")
            elif node.type == "reference_type":
                node = node.child_by_field_name("type")
            else:
                return text(node, source)
        return ""

    def in_outline(self, node: Node) -> bool:
        return node.type not in ("use_declaration", "attribute_item", "inner_attribute_item", "extern_crate_declaration",
                                 "line_comment", "block_comment", "ERROR", "expression_statement",
                                 "macro_invocation", "empty_statement")

    def outline_item(self, node: Node, source: bytes) -> str:
        if node.type == "mod_item" and node.child_by_field_name("body") is not None:
            body = node.child_by_field_name("body")
            return source[node.start_byte:body.start_byte].decode("utf-8", "replace") + "{ ... }"
        return self.render(node, source)

    # -- definitions ------------------------------------------------------------------------------

    def impls(self, root: Node, name: str, source: bytes) -> list[Node]:
        return [n for n in self.items(root) if n.type == "impl_item" and self.names(n, source) == [name]]

    def companions(self, root: Node, node: Node, name: str, source: bytes) -> str:
        if node.type not in ("struct_item", "enum_item", "union_item", "type_item"):
            return ""
        return "\n".join(self.render(impl, source) for impl in self.impls(root, name, source))

    def reexports(self, tree: Tree, name: str, source: bytes) -> list[tuple[Import, str]]:
        return [(imp, imp.name) for imp, public in self._uses(tree, source)
                if public and imp.local_name == name and imp.name not in (None, "*")]

    def member(self, parsed: ParsedFile, owner: str, name: str) -> Definition | None:
        if parsed.tree is None:
            return None
        root = parsed.tree.root_node
        containers = self.impls(root, owner, parsed.source)
        trait = self.find(root, owner, parsed.source)
        if trait is not None and trait.type in ("trait_item", "mod_item"):
            containers.insert(0, trait)
        for container in containers:
            for item in self.members(container, parsed.source):
                if name in self.names(item, parsed.source):
                    return self.definition_of(parsed, item, f"{owner}.{name}")
        if trait is not None and trait.type == "enum_item":
            for item in self.members(trait, parsed.source):
                if name in self.names(item, parsed.source):
                    return self.definition_of(parsed, item, f"{owner}.{name}")
        return None

    # -- imports ----------------------------------------------------------------------------------

    def imports(self, tree: Tree, source: bytes) -> list[Import]:
        return [imp for imp, _ in self._uses(tree, source)]

    def _uses(self, tree: Tree, source: bytes) -> list[tuple[Import, bool]]:
        query = compiled_query(tree.language, _IMPORT_QUERY)
        found: list[tuple[Import, bool]] = []
        for match in matches(query, tree.root_node):
            if "mod" in match:
                name = text(match["name"][0], source)
                found.append((Import(module=f"self::{name}", alias=name, line=match["mod"][0].start_point.row), False))
                continue
            use = match["use"][0]
            public = any(c.type == "visibility_modifier" for c in use.named_children)
            for imp in self._use_tree(match["argument"][0], [], source, use.start_point.row):
                found.append((imp, public))
        found.sort(key=lambda item: item[0].line)
        return found

    def _use_tree(self, node: Node, prefix: list[str], source: bytes, line: int) -> list[Import]:
        kind = node.type
        if kind == "use_as_clause":
            path = self._path_parts(node.child_by_field_name("path"), source)
            alias = text(node.child_by_field_name("alias"), source)
            return [self._import(prefix + path, alias, line)]
        if kind == "use_wildcard":
            inner = next((c for c in node.named_children), None)
            path = prefix + (self._path_parts(inner, source) if inner is not None else [])
            return [Import(module="::".join(path), name="*", line=line)] if path else []
        if kind == "scoped_use_list":
            base = node.child_by_field_name("path")
            path = prefix + (self._path_parts(base, source) if base is not None else [])
            listed = node.child_by_field_name("list")
            return self._use_tree(listed, path, source, line) if listed is not None else []
        if kind == "use_list":
            out: list[Import] = []
            for child in node.named_children:
                out.extend(self._use_tree(child, prefix, source, line))
            return out
        parts = self._path_parts(node, source)
        return [self._import(prefix + parts, None, line)] if parts else []

    @staticmethod
    def _path_parts(node: Node | None, source: bytes) -> list[str]:
        if node is None:
            return []
        return [p.strip() for p in text(node, source).split("::") if p.strip()]

    @staticmethod
    def _import(path: list[str], alias: str | None, line: int) -> Import:
        if path and path[-1] == "self":
            path = path[:-1]
        if not path:
            return Import(module="", line=line)
        if len(path) == 1:
            return Import(module=path[0], alias=alias or path[0], line=line)
        return Import(module="::".join(path[:-1]), name=path[-1], alias=alias, line=line)

    # -- resolution -------------------------------------------------------------------------------

    def resolve(self, imp: Import, from_path: Path, workspace: Workspace) -> list[Path]:
        segments = [s for s in imp.module.split("::") if s]
        if imp.name and imp.name != "*":
            segments.append(imp.name)
        if not segments:
            return []
        base = self._anchor(segments, from_path, workspace)
        if base is None:
            return []
        anchor_file, rest = base
        files = [anchor_file]
        directory = self.module_dir(anchor_file)
        for segment in rest:
            found = next((p for p in (directory / f"{segment}.rs", directory / segment / "mod.rs") if workspace.is_file(p)), None)
            if found is None:
                break
            files.append(found)
            directory = directory / segment
        if imp.name and imp.name != "*":
            # the item's module first (when `name` is a module), then the module that holds it
            named_is_module = len(files) == len(rest) + 1
            if named_is_module and len(files) >= 2:
                return unique_paths([files[-1], files[-2]])
        return [files[-1]]

    def _anchor(self, segments: list[str], from_path: Path, workspace: Workspace) -> tuple[Path, list[str]] | None:
        first = segments[0]
        if first == "crate":
            root = self.crate_root(from_path, workspace)
            return (root, segments[1:]) if root is not None else None
        if first in ("self", "super"):
            current = from_path
            index = 0
            while index < len(segments) and segments[index] in ("self", "super"):
                if segments[index] == "super":
                    parent = self.parent_module(current, workspace)
                    if parent is None:
                        return None
                    current = parent
                index += 1
            return current, segments[index:]
        parsed = workspace.parsed(from_path)
        if parsed is not None and parsed.tree is not None:
            for imp, _ in self._uses(parsed.tree, parsed.source):
                if imp.module == f"self::{first}":
                    return from_path, segments
        crate = self.crate_named(first, from_path, workspace)
        if crate is not None:
            return crate, segments[1:]
        return None

    @staticmethod
    def module_dir(path: Path) -> Path:
        """Where the child modules of the module in ``path`` live."""
        if path.name in ("mod.rs", "lib.rs", "main.rs") or path.parent.name in _CRATE_ROOT_DIRS:
            return path.parent
        return path.parent / path.stem

    @staticmethod
    def parent_module(path: Path, workspace: Workspace) -> Path | None:
        directory = path.parent.parent if path.name == "mod.rs" else path.parent
        for candidate in (directory / "mod.rs", directory / "lib.rs", directory / "main.rs", directory.parent / f"{directory.name}.rs"):
            if workspace.is_file(candidate) and candidate != path:
                return candidate
        return None

    @staticmethod
    def cargo_dir(path: Path, workspace: Workspace) -> Path | None:
        for directory in walk_up(path.parent):
            if workspace.is_file(directory / "Cargo.toml"):
                return directory
        return None

    def crate_root(self, path: Path, workspace: Workspace) -> Path | None:
        directory = self.cargo_dir(path, workspace)
        if directory is None:
            return None
        return self._root_file(directory, workspace)

    @staticmethod
    def _root_file(directory: Path, workspace: Workspace) -> Path | None:
        for candidate in (directory / "src" / "lib.rs", directory / "src" / "main.rs"):
            if workspace.is_file(candidate):
                return candidate
        return None

    def crate_named(self, name: str, from_path: Path, workspace: Workspace) -> Path | None:
        """The root file of crate ``name``: this crate (by its package name) or one in the roots."""
        directories = []
        own = self.cargo_dir(from_path, workspace)
        if own is not None:
            directories.append(own)
        for root in workspace.roots:
            directories.append(root)
            for child in list_dir(root):
                directories.append(child)
                if child.name in ("crates", "libs", "packages", "components"):
                    directories.extend(list_dir(child))
        for directory in unique_paths(directories):
            manifest = directory / "Cargo.toml"
            if not workspace.is_file(manifest):
                continue
            if _package_name(manifest) == name:
                return self._root_file(directory, workspace)
        return None


def _package_name(manifest: Path) -> str | None:
    """``[package] name`` of a Cargo.toml, with ``-`` as ``_`` (how code names the crate)."""
    content = read_text(manifest)
    if content is None:
        return None
    try:
        import tomllib

        data = tomllib.loads(content)
    except Exception:  # noqa: BLE001 - Python 3.10 or an invalid manifest: read the line
        data = None
    if isinstance(data, dict):
        package = data.get("package")
        if isinstance(package, dict) and isinstance(package.get("name"), str):
            return package["name"].replace("-", "_")
        lib = data.get("lib")
        if isinstance(lib, dict) and isinstance(lib.get("name"), str):
            return lib["name"].replace("-", "_")
        return None
    section = ""
    for line in content.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped
        elif section == "[package]" and stripped.startswith("name") and "=" in stripped:
            return stripped.split("=", 1)[1].strip().strip('"').replace("-", "_")
    return None

