"""What the syntax tree says about the cursor: how much a completion may span.

A completion is multi-line where the cursor sits on an empty block body (the line after a
``def f():`` or a ``{`` with nothing in the block yet); otherwise it is one line. tree-sitter
confirms that the opener is a real ``:`` / ``{`` token, not text inside a string or comment.
"""

from __future__ import annotations

from typing import Literal

from code_llama_ls.documents import Document

Scope = Literal["line", "block"]
BLOCK_OPENERS = {":", "{"}


def completion_scope(document: Document, offset: int) -> Scope:
    text = document.text
    line_end = _line_end(text, offset)
    if text[offset:line_end].strip():
        return "line"  # mid-line: complete the rest of this line only
    line_start = _line_start(text, offset)
    if text[line_start:offset].strip():
        return "line"  # the cursor line already has code before the cursor
    opener = _last_code_char(document, line_start)
    if opener is None or text[opener] not in BLOCK_OPENERS or not _is_token(document, opener):
        return "line"
    following = _first_code_char(text, line_end)
    if text[opener] == "{":
        return "block" if following is None or text[following] == "}" else "line"
    # ":" (Python): the block is empty when the next code line is not indented deeper.
    if following is None:
        return "block"
    opener_indent = _indent(text, _line_start(text, opener))
    return "block" if _indent(text, _line_start(text, following)) <= opener_indent else "line"


def _line_start(text: str, offset: int) -> int:
    return max(text.rfind("\n", 0, offset), text.rfind("\r", 0, offset)) + 1


def _line_end(text: str, offset: int) -> int:
    ends = [i for i in (text.find("\n", offset), text.find("\r", offset)) if i != -1]
    return min(ends) if ends else len(text)


def _last_code_char(document: Document, before: int) -> int | None:
    """The last non-space character before ``before``, skipping comments the tree knows of."""
    text = document.text
    index = len(text[:before].rstrip()) - 1
    while index >= 0:
        comment = _node_at(document, index)
        if comment is None or comment.type != "comment":
            break
        index = len(text[:_offset_of_byte(text, comment.start_byte)].rstrip()) - 1
    return index if index >= 0 else None


def _first_code_char(text: str, after: int) -> int | None:
    stripped = text[after:].lstrip()
    return len(text) - len(stripped) if stripped else None


def _indent(text: str, line_start: int) -> int:
    line = text[line_start:_line_end(text, line_start)]
    return len(line) - len(line.lstrip(" \t"))


def _is_token(document: Document, offset: int) -> bool:
    """True where tree-sitter sees an opener token at ``offset`` (plain text: trust the text)."""
    if document.tree is None:
        return True
    node = _node_at(document, offset)
    return node is not None and node.type in BLOCK_OPENERS


def _node_at(document: Document, offset: int):
    """The smallest syntax node covering the character at ``offset`` (None for plain text)."""
    if document.tree is None:
        return None
    byte = offset if document.text.isascii() else len(document.text[:offset].encode("utf-8", "surrogatepass"))
    return document.tree.root_node.descendant_for_byte_range(byte, byte + 1)


def _offset_of_byte(text: str, byte: int) -> int:
    if text.isascii():
        return byte
    return len(text.encode("utf-8", "surrogatepass")[:byte].decode("utf-8", "surrogatepass"))
