"""C and C++ on the shared brace-language machinery (``brace.py``).

``#include "x.h"`` / ``<x.h>`` become ``Import(module="x.h", name="*")`` (the angle form keeps its
brackets: ``module="<stdio.h>"``); a quoted include resolves next to the including file, then in
the workspace's include dirs (``search_paths``), then in ``include/`` of the workspace roots; an
angle include only in the include dirs. Definitions look through ``#ifndef`` guards,
``extern "C" {}`` blocks and namespaces; prototypes, structs, classes, enums, typedefs and macros
are definitions.
"""

from __future__ import annotations

from pathlib import Path

from tree_sitter import Node, Tree

from .base import Definition, Import, ParsedFile, Workspace
from .brace import BraceLanguage, captures, compiled_query, text, unique_paths

_C_INCLUDE_QUERY = "(preproc_include path: (_) @path) @include"
_C_SUFFIXES = frozenset({".c", ".h"})


class CSupport(BraceLanguage):
    languages = ("c", "cpp")
    scope_kinds = {
        "function_definition": "function",
        "struct_specifier": "struct",
        "union_specifier": "union",
        "enum_specifier": "enum",
        "class_specifier": "class",
        "namespace_definition": "namespace",
        "lambda_expression": "closure",
    }
    function_types = frozenset({"function_definition", "lambda_expression"})
    body_types = frozenset({"compound_statement"})
    long_value_types = frozenset({"initializer_list"})
    chain_fields = {
        "field_expression": ("argument", "field"),
        "qualified_identifier": ("scope", "name"),
        "nested_namespace_specifier": ("scope", "name"),
    }
    wrapper_fields = {"template_type": "name", "template_function": "name"}
    head_types = ("identifier", "type_identifier", "namespace_identifier", "this")
    part_types = frozenset({"identifier", "type_identifier", "namespace_identifier", "field_identifier", "this", "destructor_name"})
    name_ref_parents = frozenset({"template_type", "template_function", "qualified_identifier", "preproc_defined"})
    decl_fields = ("name", "declarator")
    skip_ancestor_types = frozenset({"preproc_include", "preproc_params"})
    namespace_types = frozenset({"namespace_definition"})
    noise = frozenset(
        {"this", "NULL", "nullptr", "std", "size_t", "printf", "fprintf", "sprintf", "snprintf", "malloc", "calloc",
         "realloc", "free", "memcpy", "memmove", "memset", "strlen", "strcmp", "assert", "errno", "stdin", "stdout", "stderr"}
    )
    scope_keywords = {"struct": "struct", "union": "union", "enum": "enum", "class": "class", "namespace": "namespace"}

    # -- names ------------------------------------------------------------------------------------

    def unwrap(self, node: Node) -> list[Node] | None:
        if node.type in ("preproc_ifdef", "preproc_if", "preproc_else", "preproc_elif", "preproc_elifdef"):
            return [
                child for index, child in enumerate(node.children)
                if child.is_named and node.field_name_for_child(index) not in ("name", "condition")
            ]
        if node.type == "linkage_specification":
            body = node.child_by_field_name("body")
            if body is None:
                return []
            return body.named_children if body.type == "declaration_list" else [body]
        if node.type == "template_declaration":
            inner = [c for c in node.named_children if c.type != "template_parameter_list"]
            return inner
        if node.type == "access_specifier":
            return []
        return None

    def outer(self, node: Node) -> Node:
        parent = node.parent
        if parent is not None and parent.type == "template_declaration":
            return parent
        return node

    def body(self, node: Node) -> Node | None:
        found = node.child_by_field_name("body")
        if found is None and node.type == "type_definition":
            return None
        return found

    def names(self, node: Node, source: bytes) -> list[str]:
        kind = node.type
        if kind in ("preproc_def", "preproc_function_def", "struct_specifier", "union_specifier", "enum_specifier",
                    "class_specifier", "namespace_definition", "concept_definition", "alias_declaration"):
            name = node.child_by_field_name("name")
            return [text(name, source).rsplit("::", 1)[-1]] if name is not None else []
        if kind in ("function_definition", "declaration", "field_declaration", "type_definition"):
            out = []
            for declarator in node.children_by_field_name("declarator"):
                name = self._declarator_name(declarator, source)
                if name:
                    out.append(name)
            if not out and kind in ("declaration", "field_declaration"):
                specifier = node.child_by_field_name("type")
                if specifier is not None and specifier.type in ("struct_specifier", "class_specifier", "union_specifier", "enum_specifier") and self.body(specifier) is not None:
                    return self.names(specifier, source)
            return out
        if kind == "enumerator":
            return [text(node.child_by_field_name("name"), source)]
        return []

    def _is_declaration(self, node: Node, parent: Node) -> bool:
        if parent.type in ("struct_specifier", "union_specifier", "enum_specifier", "class_specifier") and self.body(parent) is None:
            return False  # `struct point p;` uses the type
        return super()._is_declaration(node, parent)

    def _declarator_name(self, declarator: Node, source: bytes) -> str:
        node: Node | None = declarator
        while node is not None:
            if node.type in ("identifier", "field_identifier", "type_identifier", "destructor_name", "operator_name"):
                return text(node, source)
            if node.type == "qualified_identifier":
                return text(node, source).rsplit("::", 1)[-1]
            inner = node.child_by_field_name("declarator")
            if inner is None:
                inner = next((c for c in node.named_children if c.type not in ("parameter_list", "type_qualifier")), None)
            node = inner
        return ""

    def _qualifier(self, node: Node, source: bytes) -> str:
        """``Shape`` for an out-of-line ``double geo::Shape::area() {…}``."""
        declarator = node.child_by_field_name("declarator")
        while declarator is not None and declarator.type != "qualified_identifier":
            declarator = declarator.child_by_field_name("declarator")
        if declarator is None:
            return ""
        parts = text(declarator, source).split("::")
        return parts[-2] if len(parts) >= 2 else ""

    def members(self, container: Node, source: bytes) -> list[Node]:
        target = container
        if container.type in ("declaration", "type_definition", "field_declaration"):
            specifier = container.child_by_field_name("type")
            if specifier is not None and self.body(specifier) is not None:
                target = specifier
        body = self.body(target)
        if body is None:
            return []
        return [n for n in self.flatten(body.named_children) if n.type not in self.comment_types]

    def find_container(self, root: Node, owner: str, source: bytes) -> Node | None:
        found = super().find_container(root, owner, source)
        if found is not None and self.body(found) is None and found.type not in ("type_definition", "declaration"):
            return None
        return found

    def member(self, parsed: ParsedFile, owner: str, name: str) -> Definition | None:
        found = super().member(parsed, owner, name)
        if found is not None or parsed.tree is None:
            return found
        # An out-of-line definition `R Owner::name(…) {…}` (C++ source files).
        for node in self.items(parsed.tree.root_node):
            if node.type == "function_definition" and name in self.names(node, parsed.source) and self._qualifier(node, parsed.source) == owner:
                return self.definition_of(parsed, node, f"{owner}.{name}")
        return None

    def definition(self, parsed: ParsedFile, name: str, workspace: Workspace) -> Definition | None:
        if parsed.tree is None:
            return None
        root = parsed.tree.root_node
        # Prefer the full struct/class/enum over a forward declaration or a bare `struct X;`.
        candidates = [n for n in self.items(root) if name in self.names(n, parsed.source)]
        candidates = [n for n in candidates if not self._qualifier(n, parsed.source)]
        for node in candidates:
            if node.type in ("struct_specifier", "class_specifier", "union_specifier", "enum_specifier") and self.body(node) is None:
                continue
            return self.definition_of(parsed, node, name)
        node = self.find(root, name, parsed.source)
        return self.definition_of(parsed, node, name) if node is not None else None

    def in_outline(self, node: Node) -> bool:
        return node.type not in ("preproc_include", "preproc_call", "ERROR") and node.is_named and not (
            node.type == "preproc_def" and node.child_by_field_name("value") is None
        )

    # -- imports ----------------------------------------------------------------------------------

    def imports(self, tree: Tree, source: bytes) -> list[Import]:
        query = compiled_query(tree.language, _C_INCLUDE_QUERY)
        found = []
        for path in captures(query, tree.root_node).get("path", []):
            if path.type == "system_lib_string":
                module = text(path, source).strip()
            else:
                content = next((c for c in path.named_children if c.type == "string_content"), None)
                module = text(content, source) if content is not None else text(path, source).strip('"')
            if module:
                found.append(Import(module=module, name="*", line=path.start_point.row))
        return sorted(found, key=lambda imp: imp.line)

    def resolve(self, imp: Import, from_path: Path, workspace: Workspace) -> list[Path]:
        module = imp.module
        system = module.startswith("<")
        relative = module.strip("<>").strip()
        if not relative:
            return []
        language = "c" if from_path.suffix in _C_SUFFIXES else "cpp"
        include_dirs = list(workspace.search_paths(language))
        other = "c" if language == "cpp" else "cpp"
        include_dirs += [p for p in workspace.search_paths(other) if p not in include_dirs]
        candidates: list[Path] = []
        if not system:
            candidates.append(from_path.parent / relative)
        candidates += [d / relative for d in include_dirs]
        if not system:
            for root in workspace.roots:
                candidates += [root / "include" / relative, root / relative]
        # the first match is the file the compiler takes
        return next(([p] for p in unique_paths(candidates) if workspace.is_file(p)), [])
