"""What the syntax tree says about the cursor: how much a completion may span.

A completion may be multi-line wherever the rest of the cursor's line is empty or holds only
closing brackets, quotes and trailing punctuation (what an editor's auto-pairing leaves:
``def f(|)``, ``function g() {|}``); where more code follows on the line it is one line
(fill-in-line). Where a multi-line suggestion ends is post-processing's business: the end of the
syntactic unit being written (``completion/postprocess.py``).

tree-sitter confirms that an opener is a real token, not text inside a string or comment, and
where the cursor is; the document's existing tree is used as is (no reparse), so this stays well
under a millisecond at any position of a large file. Plain text (no grammar) trusts the text.
"""

from __future__ import annotations

import re
from typing import Literal

from code_llama_ls.documents import Document, Position

Scope = Literal["line", "block"]
OPEN_BRACKETS = {"(": ")", "[": "]", "{": "}"}
LINE_CLOSERS = frozenset(")]}\"'`;:, \t\r")  # auto-paired closers and what may trail them
INDENTED_LANGUAGES = {"python"}  # blocks nest by indentation, not by braces
_CODE = re.compile(r"\S")
_MAX_COMMENT_SKIPS = 64


def completion_scope(document: Document, offset: int) -> Scope:
    text = document.text
    return "block" if only_closers(text[offset:_line_end(text, offset)]) else "line"


def only_closers(rest_of_line: str) -> bool:
    """Whether the rest of a line is empty or only what auto-pairing leaves (closers, quotes)."""
    return set(rest_of_line) <= LINE_CLOSERS


def opening_bracket_before(document: Document, offset: int) -> int | None:
    """Offset of the ``(``/``[``/``{`` token that ends the cursor's line before the cursor."""
    text = document.text
    index = offset - 1
    line_start = _line_start(text, offset)
    while index >= line_start and text[index] in " \t":
        index -= 1
    if index < line_start or text[index] not in OPEN_BRACKETS or not _is_token(document, index):
        return None
    return index


def block_opener(document: Document, offset: int) -> int | None:
    """Offset of the bracket that opens the block holding a multi-line cursor, if it has one.

    That is the bracket at the end of the cursor's line (``foo(|``) or, on a blank line, the
    ``{``/``(``/``[`` that is the last code before it. Python's ``:`` blocks have no closer.
    """
    bracket = opening_bracket_before(document, offset)
    if bracket is not None:
        return bracket
    text = document.text
    line_start = _line_start(text, offset)
    if text[line_start:offset].strip():
        return None
    opener = _last_code_char(document, line_start)
    if opener is None or text[opener] not in OPEN_BRACKETS or not _is_token(document, opener):
        return None
    return opener


def block_is_closed(document: Document, offset: int) -> bool:
    """Whether the document already has the closer of the block holding the cursor.

    True where there is no such bracket block (a Python ``:`` block, module level): a completion
    that closes something there closes what the document already closes. Plain text: true
    where anything follows the cursor.
    """
    opener = block_opener(document, offset)
    if opener is None:
        return True
    tree = document.tree
    if tree is None:
        return bool(_CODE.search(document.text, offset))
    node = _node_at(document, opener)
    parent = node.parent if node is not None else None
    if parent is None or parent.is_error or parent.child_count < 2:
        return False
    last = parent.child(parent.child_count - 1)
    return (last is not None and last.type == OPEN_BRACKETS[document.text[opener]] and not last.is_missing
            and _node_offset(document, last) >= offset)


def _line_start(text: str, offset: int) -> int:
    return max(text.rfind("\n", 0, offset), text.rfind("\r", 0, offset)) + 1


def _line_end(text: str, offset: int) -> int:
    ends = [i for i in (text.find("\n", offset), text.find("\r", offset)) if i != -1]
    return min(ends) if ends else len(text)


def _last_non_space(text: str, before: int) -> int:
    index = before - 1
    while index >= 0 and text[index].isspace():
        index -= 1
    return index


def _last_code_char(document: Document, before: int) -> int | None:
    """The last non-space character before ``before``, skipping comments the tree knows of."""
    text = document.text
    index = _last_non_space(text, before)
    for _ in range(_MAX_COMMENT_SKIPS):
        if index < 0:
            break
        comment = _node_at(document, index)
        if comment is None or "comment" not in comment.type:
            break
        index = _last_non_space(text, _node_offset(document, comment))
    return index if index >= 0 else None


def _is_token(document: Document, offset: int) -> bool:
    """True where tree-sitter sees the character at ``offset`` as a token of its own (plain
    text: trust the text), so a ``{`` or ``:`` inside a string or comment is not an opener."""
    if document.tree is None:
        return True
    node = _node_at(document, offset)
    return node is not None and node.type == document.text[offset]


# -- string offsets and tree-sitter coordinates ------------------------------------------------
# ASCII text: a string offset is the byte offset. Otherwise tree-sitter's points (row, byte
# column) are used, which cost O(line) to compute, not O(document): encoding the text before the
# cursor of a large non-ASCII file would take a good part of a millisecond each time. Only where
# the document has lone "\r" line breaks (tree-sitter counts rows at "\n") are bytes computed.


def _node_at(document: Document, offset: int, width: int | None = None):
    """The smallest syntax node covering ``width`` characters (default: one) at ``offset``."""
    tree = document.tree
    if tree is None:
        return None
    text = document.text
    chars = text[offset: offset + (1 if width is None else width)]
    size = len(chars) if text.isascii() else len(chars.encode("utf-8", "surrogatepass"))
    root = tree.root_node
    if _uses_points(document):
        row, column = _point(document, offset)
        return root.descendant_for_point_range((row, column), (row, column + size))
    byte = _byte(document, offset)
    return root.descendant_for_byte_range(byte, byte + size)


def _uses_points(document: Document) -> bool:
    text = document.text
    return not text.isascii() and text.count("\n") == document.line_count - 1


def _point(document: Document, offset: int) -> tuple[int, int]:
    position = document.position_at(offset, "utf-8")
    return position.line, position.character


def _byte(document: Document, offset: int) -> int:
    text = document.text
    return offset if text.isascii() else len(text[:offset].encode("utf-8", "surrogatepass"))


def _node_offset(document: Document, node, end: bool = False) -> int:
    """The string offset where ``node`` starts (or ends)."""
    text = document.text
    if text.isascii():
        return node.end_byte if end else node.start_byte
    if _uses_points(document):
        row, column = node.end_point if end else node.start_point
        return document.offset_at(Position(row, column), "utf-8")
    byte = node.end_byte if end else node.start_byte
    return len(text.encode("utf-8", "surrogatepass")[:byte].decode("utf-8", "surrogatepass"))
