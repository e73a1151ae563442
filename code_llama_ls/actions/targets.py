"""What an action works on: the function, method or class at a cursor or selection.

Plain tree-sitter lookups per language. Offsets here are string offsets (code points) into the
document text; tree-sitter's byte offsets are converted at the edges.
"""

from __future__ import annotations

from dataclasses import dataclass

from tree_sitter import Node, Parser, Tree

from code_llama_ls.context.languages import grammar

_PY = {"function_definition": "function", "class_definition": "class"}
_JS = {"function_declaration": "function", "generator_function_declaration": "function",
       "class_declaration": "class", "abstract_class_declaration": "class", "method_definition": "method",
       "interface_declaration": "interface", "function_signature": "function", "lexical_declaration": "function"}
DEFINITIONS: dict[str, dict[str, str]] = {
    "python": _PY,
    "javascript": _JS,
    "typescript": _JS,
    "typescriptreact": _JS,
    "java": {"method_declaration": "method", "constructor_declaration": "method", "class_declaration": "class",
             "interface_declaration": "interface", "enum_declaration": "class", "record_declaration": "class"},
    "rust": {"function_item": "function", "function_signature_item": "function", "struct_item": "class",
             "enum_item": "class", "trait_item": "interface", "union_item": "class"},
    "go": {"function_declaration": "function", "method_declaration": "method", "type_declaration": "class"},
    "c": {"function_definition": "function", "struct_specifier": "class", "declaration": "function"},
    "cpp": {"function_definition": "function", "class_specifier": "class", "struct_specifier": "class",
            "declaration": "function", "field_declaration": "method"},
}
LANGUAGE_LABELS = {"python": "Python", "javascript": "JavaScript", "typescript": "TypeScript",
                   "typescriptreact": "TypeScript (TSX)", "java": "Java", "rust": "Rust", "go": "Go", "c": "C",
                   "cpp": "C++"}
FENCE_NAMES = {"typescriptreact": "tsx", "plaintext": ""}


@dataclass(frozen=True)
class Target:
    kind: str  # "function", "method", "class", "interface", "module"
    name: str
    start: int  # the definition's text (string offsets)
    end: int
    anchor: int  # where a comment "above" goes: start of the definition incl. decorators/export/attributes/template
    node_type: str = ""


def to_char(source: bytes, byte_offset: int, text: str) -> int:
    return byte_offset if text.isascii() else len(source[:byte_offset].decode("utf-8", "surrogatepass"))


def to_byte(text: str, offset: int) -> int:
    return offset if text.isascii() else len(text[:offset].encode("utf-8", "surrogatepass"))


def parse(language: str, text: str) -> Tree | None:
    lang = grammar(language)
    return Parser(lang).parse(text.encode("utf-8", "surrogatepass")) if lang is not None else None


def _text(node: Node | None) -> str:
    return node.text.decode("utf-8", "surrogatepass") if node is not None and node.text is not None else ""


def _c_declarator_name(node: Node | None) -> tuple[str, bool]:
    """(name, is a function) of a C/C++ declarator chain."""
    is_function = False
    while node is not None:
        if node.type == "function_declarator":
            is_function = True
        if node.type in ("identifier", "field_identifier", "qualified_identifier", "destructor_name",
                         "operator_name", "type_identifier"):
            return _text(node), is_function
        node = node.child_by_field_name("declarator")
    return "", is_function


def definition_name(node: Node, language: str) -> str | None:
    """The defined name, or None when the node is not really a definition (a variable …)."""
    if node.type == "lexical_declaration":  # const f = () => … / function () {}
        for child in node.named_children:
            value = child.child_by_field_name("value")
            if child.type == "variable_declarator" and value is not None and value.type in (
                    "arrow_function", "function_expression", "function", "class"):
                return _text(child.child_by_field_name("name"))
        return None
    if node.type == "type_declaration":
        spec = next((c for c in node.named_children if c.type in ("type_spec", "type_alias")), None)
        return _text(spec.child_by_field_name("name")) if spec is not None else None
    if language in ("c", "cpp") and node.type in ("function_definition", "declaration", "field_declaration"):
        name, is_function = _c_declarator_name(node.child_by_field_name("declarator"))
        return name if name and is_function else None
    if node.type in ("struct_specifier", "class_specifier"):
        if node.child_by_field_name("body") is None:
            return None
        return _text(node.child_by_field_name("name")) or None
    name = node.child_by_field_name("name")
    return _text(name) if name is not None else None


def _anchor(node: Node, language: str) -> Node:
    parent = node.parent
    if parent is not None and parent.type in ("export_statement", "template_declaration", "decorated_definition"):
        node = parent
        if node.parent is not None and node.parent.type == "template_declaration":
            node = node.parent
    if language == "rust":
        previous = node.prev_named_sibling
        while previous is not None and previous.type == "attribute_item":
            node, previous = previous, previous.prev_named_sibling
    return node


def target_at(language: str, text: str, tree: Tree | None, start: int, end: int) -> Target | None:
    """The innermost function, method or class holding [start, end) (a cursor when equal)."""
    kinds = DEFINITIONS.get(language)
    if kinds is None or tree is None:
        return None
    source = text.encode("utf-8", "surrogatepass")
    b_start, b_end = to_byte(text, start), to_byte(text, end)
    node = tree.root_node.descendant_for_byte_range(b_start, max(b_start, b_end))
    # A selection of whole lines starts before the definition's first character: look from its
    # first non-blank character too.
    while node is not None:
        if node.type in kinds:
            name = definition_name(node, language)
            if name:
                kind = kinds[node.type]
                if language == "python" and kind == "function" and _inside(node, "class_definition"):
                    kind = "method"
                if language == "cpp" and node.type == "function_definition" and "::" in name:
                    kind = "method"
                anchor = _anchor(node, language)
                return Target(kind, name, to_char(source, node.start_byte, text), to_char(source, node.end_byte, text),
                              to_char(source, anchor.start_byte, text), node.type)
        node = node.parent
    stripped = text[start:end]
    lead = len(stripped) - len(stripped.lstrip())
    if end > start and lead and start + lead < end:
        return target_at(language, text, tree, start + lead, end)
    return None


def _inside(node: Node, parent_type: str) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.type == parent_type:
            return True
        if parent.type in ("function_definition",):
            return False
        parent = parent.parent
    return False


def node_for(tree: Tree, text: str, target: Target) -> Node | None:
    """The tree node of a target found earlier on the same text."""
    node = tree.root_node.descendant_for_byte_range(to_byte(text, target.start), to_byte(text, target.end))
    while node is not None and (node.type != target.node_type or to_char(tree.root_node.text or b"", node.start_byte, text) != target.start):
        node = node.parent
    return node


def error_count(tree: Tree | None) -> int:
    """ERROR and MISSING nodes in a tree."""
    if tree is None or not tree.root_node.has_error:
        return 0
    count, stack = 0, [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            count += 1
        if node.has_error:
            stack.extend(node.children)
    return count
