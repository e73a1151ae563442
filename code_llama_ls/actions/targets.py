"""What an action works on: the function, method or class at a cursor or selection.

Plain tree-sitter lookups per language. Offsets here are string offsets (code points) into the
document text; tree-sitter's byte offsets are converted at the edges.
"""

from __future__ import annotations

from dataclasses import dataclass

from tree_sitter import Node, Parser, Tree

from code_llama_ls.documents import to_byte, to_char
from code_llama_ls.languages import grammar

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


# Nodes that hold a definition together with what is written before it: export, decorators,
# a template line, TypeScript's `declare`.
_WRAPPERS = ("export_statement", "decorated_definition", "template_declaration", "ambient_declaration")
# What some grammars keep as siblings before the item they belong to: Rust attributes,
# TypeScript decorators of class members.
_SIBLING_HEADS = ("attribute_item", "decorator")


def _wrapped(node: Node) -> Node | None:
    """The definition inside a wrapper (through nested wrappers), or None (`export { a }`)."""
    while node.type in _WRAPPERS:
        inner = node.child_by_field_name("declaration") or node.child_by_field_name("definition")
        if inner is None and node.type != "export_statement" and node.named_children:
            inner = node.named_children[-1]
        if inner is None:
            return None
        node = inner
    return node


def _head_owner(node: Node) -> Node | None:
    """The definition whose head ``node`` is, when the grammar keeps it outside the definition.

    A wrapper's (export, decorators, template) is the definition it holds; a Rust attribute's or
    a TypeScript method decorator's is the item after them, their sibling. Anything else stands
    for itself.
    """
    if node.type in _WRAPPERS:
        return _wrapped(node)
    if node.type in _SIBLING_HEADS:
        item = node.next_named_sibling
        while item is not None and item.type in _SIBLING_HEADS:
            item = item.next_named_sibling
        return item
    return node


def _anchor(node: Node) -> Node:
    """Where a definition's head starts: its outermost wrapper, then the attributes or decorators
    written as its siblings above it."""
    while node.parent is not None and node.parent.type in _WRAPPERS:
        node = node.parent
    previous = node.prev_named_sibling
    while previous is not None and previous.type in _SIBLING_HEADS:
        node, previous = previous, previous.prev_named_sibling
    return node


def _between_children(node: Node, point: int) -> Node:
    """For a point in the blank space between a node's children, the next child's definition when
    its head has already started there (a blank line under a Rust attribute); else the node."""
    child = node.first_named_child_for_byte(point)
    if child is None or child.start_byte <= point:
        return node
    owner = _head_owner(child)
    return owner if owner is not None and _anchor(owner).start_byte <= point else node


def _on_line_text(text: str, offset: int) -> int:
    """A cursor after the end of a line's text is on its last character, not counting a trailing
    `;` or `,`: the end of a closing-brace line (`}`, `};`) or of a Python def's last statement
    belongs to that definition. Elsewhere the cursor stays where it is."""
    line_end = text.find("\n", offset)
    if text[offset:line_end if line_end >= 0 else len(text)].strip():
        return offset
    line_start = text.rfind("\n", 0, offset) + 1
    before = text[line_start:offset].rstrip().rstrip(";,").rstrip()
    return line_start + len(before) - 1 if before.strip() else offset


def _without_blanks(text: str, start: int, end: int) -> tuple[int, int]:
    """A selection without the blank space around it: whole lines selected mean their text."""
    chosen = text[start:end]
    if not chosen.strip():
        return start, end
    return start + len(chosen) - len(chosen.lstrip()), start + len(chosen.rstrip())


def _definition(node: Node | None, kinds: dict[str, str], language: str, end: int) -> Node | None:
    """The innermost definition that holds ``node`` or whose head it is, and reaches ``end``."""
    while node is not None:
        owner = _head_owner(node)
        if owner is not None and owner.type in kinds and owner.end_byte >= end and definition_name(owner, language):
            return owner
        node = node.parent
    return None


def _is_member(node: Node) -> bool:
    """A function written in a C++ class body, or a Rust fn in an impl or trait."""
    parent = node.parent
    while parent is not None and parent.type in _WRAPPERS:
        parent = parent.parent
    if parent is None or parent.type not in ("field_declaration_list", "declaration_list"):
        return False
    return parent.type == "field_declaration_list" or (
        parent.parent is not None and parent.parent.type in ("impl_item", "trait_item"))


def _kind(node: Node, language: str, name: str) -> str:
    """A function is a method where it is written in a class (or a Rust impl), or is `Calc::add`."""
    kind = DEFINITIONS[language][node.type]
    if kind != "function":
        return kind
    if language == "python":
        return "method" if _inside(node, "class_definition") else kind
    return "method" if _is_member(node) or (language == "cpp" and "::" in name) else kind


def _target(node: Node, language: str, source: bytes, text: str) -> Target:
    """The definition node as string offsets; its anchor is where a comment above it goes."""
    name = definition_name(node, language) or ""
    anchor = _anchor(node)
    return Target(_kind(node, language, name), name, to_char(source, node.start_byte, text),
                  to_char(source, node.end_byte, text), to_char(source, anchor.start_byte, text), node.type)


def target_at(language: str, text: str, tree: Tree | None, start: int, end: int) -> Target | None:
    """The innermost function, method or class holding [start, end) (a cursor when equal).

    A cursor on a definition's head selects it: from its anchor (decorators, export, Rust
    attributes, a template line) up to where its body starts; a body-less declaration is all
    head. Blank lines and comments between a decorator or attribute and the definition are part
    of the head; comments above the first of them (doc comments) and the indentation before the
    anchor are not: they belong to the enclosing scope, as the code around them does (a method's
    class is found by looking just before its anchor). Inside a body, the innermost definition
    wins. A selection is taken without the blank space around it and starts the same way.
    """
    kinds = DEFINITIONS.get(language)
    if kinds is None or tree is None:
        return None
    if start == end:
        start = end = _on_line_text(text, start)
    else:
        start, end = _without_blanks(text, start, end)
    b_start, b_end = to_byte(text, start), to_byte(text, end)
    node = tree.root_node.descendant_for_byte_range(b_start, b_start)
    if node is not None and start == end:
        node = _between_children(node, b_start)
    definition = _definition(node, kinds, language, b_end)
    if definition is None:
        return None
    return _target(definition, language, text.encode("utf-8", "surrogatepass"), text)


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
