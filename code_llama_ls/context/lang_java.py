"""Java: scopes, imports, source-root resolution, class skeletons with member signatures.

Imports: ``import a.b.C;`` → ``Import("a.b", "C")``; ``import a.b.*;`` → ``Import("a.b", "*")``;
``import static a.B.m;`` → ``Import("a.B", "m")`` (``import static a.B.*;`` → ``name="*"``).

Resolution (static): the source root is derived from the importing file's own ``package``
declaration and path (``src/main/java/a/b/X.java`` with ``package a.b;`` → ``src/main/java``);
the sibling Maven/Gradle roots (``src/*/java``), ``<root>/src/main/java`` and
``<root>/*/src/main/java`` of the workspace roots and ``search_paths("java")`` are tried too.
``a.b.C`` → ``a/b/C.java``; a nested or static member (``a.b.Outer.Inner``, ``a.B.m``) → the
outermost class file that exists; ``a.b.*`` → the package directory's ``.java`` files.
``Import(".")`` asks for the importing file's own package: the other ``.java`` files of its
directory.

Definitions: classes, interfaces, enums, records, annotation types (member signatures with
bodies elided; Javadoc above); nested types and members are found too (``import static``
names a method).
"""

from __future__ import annotations

from pathlib import Path

from tree_sitter import Node, Tree

from .base import Import, Scope, Workspace
from .brace import BraceLanguage, captures, compiled_query, list_dir, text, unique_paths

_IMPORT_QUERY = "(import_declaration) @import"
_PACKAGE_QUERY = "(package_declaration) @package"
_TYPES = frozenset(
    {"class_declaration", "interface_declaration", "enum_declaration", "record_declaration", "annotation_type_declaration"}
)


class JavaSupport(BraceLanguage):
    languages = ("java",)
    comment_types = frozenset({"line_comment", "block_comment"})
    scope_kinds = {
        "class_declaration": "class",
        "interface_declaration": "interface",
        "enum_declaration": "enum",
        "record_declaration": "class",
        "annotation_type_declaration": "interface",
        "object_creation_expression": "class",
        "method_declaration": "function",
        "constructor_declaration": "function",
        "compact_constructor_declaration": "function",
        "lambda_expression": "closure",
    }
    function_types = frozenset(
        {"method_declaration", "constructor_declaration", "compact_constructor_declaration", "lambda_expression", "static_initializer"}
    )
    body_types = frozenset({"block", "constructor_body"})
    long_value_types = frozenset({"array_initializer"})
    chain_fields = {
        "field_access": ("object", "field"),
        "method_invocation": ("object", "name"),
        "scoped_identifier": ("scope", "name"),
    }
    optional_left = frozenset({"method_invocation"})
    extra_chain_types = frozenset({"scoped_type_identifier", "generic_type"})
    head_types = ("identifier", "type_identifier", "this", "super")
    part_types = frozenset({"identifier", "type_identifier", "this", "super"})
    name_ref_parents = frozenset({"marker_annotation", "annotation", "method_invocation"})
    decl_fields = ("name",)
    skip_ancestor_types = frozenset({"import_declaration", "package_declaration"})
    namespace_types = _TYPES
    noise = frozenset(
        {"this", "super", "String", "Object", "Integer", "Long", "Short", "Byte", "Double", "Float", "Boolean",
         "Character", "Void", "System", "Math", "Override", "Deprecated", "SuppressWarnings", "FunctionalInterface",
         "Exception", "RuntimeException", "Throwable", "Error", "StringBuilder", "Thread", "var"}
    )
    scope_keywords = {"class": "class", "interface": "interface", "enum": "enum", "record": "class"}

    # -- scopes -----------------------------------------------------------------------------------

    def module_scope(self, tree: Tree, source: bytes) -> Scope:
        package = self._package(tree, source)
        clause = next((c for c in tree.root_node.named_children if c.type == "package_declaration"), None)
        return Scope("module", package, text(clause, source) if clause is not None else "", 0, len(source))

    def body(self, node: Node) -> Node | None:
        if node.type == "object_creation_expression":
            return next((c for c in node.named_children if c.type == "class_body"), None)
        if node.type == "lambda_expression":
            found = node.child_by_field_name("body")
            return found if found is not None and found.type == "block" else None
        return super().body(node)

    def names(self, node: Node, source: bytes) -> list[str]:
        if node.type == "object_creation_expression":
            return [text(node.child_by_field_name("type"), source)]
        if node.type in ("field_declaration", "constant_declaration", "local_variable_declaration"):
            return [text(d.child_by_field_name("name"), source) for d in node.children_by_field_name("declarator")]
        return super().names(node, source)

    def _flatten(self, node: Node) -> list[Node] | None:
        if node.type == "scoped_type_identifier":
            parts: list[Node] = []
            for child in node.named_children:
                inner = self._flatten(child)
                if inner is None:
                    return None
                parts += inner
            return parts
        if node.type == "generic_type":
            first = node.named_children[0] if node.named_children else None
            return self._flatten(first) if first is not None and first.type != "type_arguments" else None
        return super()._flatten(node)

    # -- members ----------------------------------------------------------------------------------

    def unwrap(self, node: Node) -> list[Node] | None:
        if node.type == "enum_body_declarations":
            return node.named_children
        return None

    def in_outline(self, node: Node) -> bool:
        return node.type not in ("package_declaration", "import_declaration", "line_comment", "block_comment", "ERROR")

    # -- imports ----------------------------------------------------------------------------------

    def imports(self, tree: Tree, source: bytes) -> list[Import]:
        query = compiled_query(tree.language, _IMPORT_QUERY)
        found = []
        for declaration in captures(query, tree.root_node).get("import", []):
            path = next((c for c in declaration.named_children if c.type in ("scoped_identifier", "identifier")), None)
            if path is None:
                continue
            parts = [p.strip() for p in text(path, source).split(".") if p.strip()]
            line = declaration.start_point.row
            if any(c.type == "asterisk" for c in declaration.named_children):
                found.append(Import(module=".".join(parts), name="*", line=line))
            elif len(parts) > 1:
                found.append(Import(module=".".join(parts[:-1]), name=parts[-1], line=line))
            elif parts:
                found.append(Import(module=parts[0], line=line))
        return sorted(found, key=lambda imp: imp.line)

    def _package(self, tree: Tree, source: bytes) -> str:
        query = compiled_query(tree.language, _PACKAGE_QUERY)
        for declaration in captures(query, tree.root_node).get("package", []):
            name = next((c for c in declaration.named_children if c.type in ("scoped_identifier", "identifier")), None)
            if name is not None:
                return "".join(text(name, source).split())
        return ""

    # -- resolution -------------------------------------------------------------------------------

    def resolve(self, imp: Import, from_path: Path, workspace: Workspace) -> list[Path]:
        if imp.module in (".", ""):  # the importing file's own package, in every source root
            package = self._file_package(from_path, workspace)
            directories = [from_path.parent]
            if package:
                directories += [root.joinpath(*package.split(".")) for root in self.source_roots(from_path, workspace)]
            files = [f for d in unique_paths(directories) if workspace.is_dir(d) for f in self._java_files(d, workspace)]
            return [f for f in unique_paths(files) if f != from_path]
        parts = [p for p in imp.module.split(".") if p]
        for root in self.source_roots(from_path, workspace):
            if imp.name == "*":
                package_dir = root.joinpath(*parts)
                if workspace.is_dir(package_dir):
                    files = self._java_files(package_dir, workspace)
                    if files:
                        return files
            full = parts + ([imp.name] if imp.name and imp.name != "*" else [])
            for length in range(len(full), 0, -1):  # a.b.Outer.Inner → a/b/Outer.java
                candidate = root.joinpath(*full[:length - 1], f"{full[length - 1]}.java")
                if workspace.is_file(candidate):
                    return [candidate]
        return []

    def source_roots(self, from_path: Path, workspace: Workspace) -> list[Path]:
        roots: list[Path] = []
        own = self._own_root(from_path, workspace)
        if own is not None:
            roots.append(own)
            if own.name == "java" and own.parent.parent.name == "src":  # src/test/java → src/main/java …
                testing = "test" in own.parent.name.lower()
                roots += [
                    d / "java" for d in list_dir(own.parent.parent)
                    if workspace.is_dir(d / "java") and (testing or "test" not in d.name.lower())
                ]  # main code does not see test sources
        for root in workspace.roots:
            roots += [root / "src" / "main" / "java", root / "src"]
            for child in list_dir(root):
                roots.append(child / "src" / "main" / "java")
        roots += list(workspace.search_paths("java"))
        return [r for r in unique_paths(roots) if workspace.is_dir(r)]

    def _file_package(self, path: Path, workspace: Workspace) -> str:
        parsed = workspace.parsed(path)
        return self._package(parsed.tree, parsed.source) if parsed is not None and parsed.tree is not None else ""

    def _own_root(self, from_path: Path, workspace: Workspace) -> Path | None:
        package = self._file_package(from_path, workspace)
        directory = from_path.parent
        parts = [p for p in package.split(".") if p]
        for part in reversed(parts):
            if directory.name != part:
                return None
            directory = directory.parent
        return directory

    @staticmethod
    def _java_files(directory: Path, workspace: Workspace) -> list[Path]:
        return [p for p in list_dir(directory) if p.suffix == ".java" and workspace.is_file(p)]
