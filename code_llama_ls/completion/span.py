"""How much a completion at the cursor may span: one line, or a block.

A completion may be multi-line wherever the rest of the cursor's line is empty or holds only
closing brackets, quotes and trailing punctuation (what an editor's auto-pairing leaves:
``def f(|)``, ``function g() {|}``) or where the cursor is inside an empty pair that more code
follows (``try {|} catch``); where other code follows on the line it is one line (fill-in-line). Where a multi-line suggestion ends is post-processing's business: the end of the
syntactic unit being written (``completion/postprocess.py``). Reading only the cursor's line, this
costs the same at any position of any file.
"""

from __future__ import annotations

from typing import Literal

from code_llama_ls.documents import Document

Span = Literal["line", "block"]
LINE_CLOSERS = frozenset(")]}\"'`;:, \t\r")  # auto-paired closers and what may trail them
INDENTED_LANGUAGES = {"python"}  # blocks nest by indentation, not by braces


_PAIRS = {"(": ")", "[": "]", "{": "}"}


def completion_scope(document: Document, offset: int) -> Span:
    """Multi-line where the rest of the line is only closers, or where the cursor is inside an
    empty pair (``const {|} = require(…)``, ``try {|} catch``): its body may take lines."""
    text = document.text
    rest = text[offset:_line_end(text, offset)]
    if only_closers(rest):
        return "block"
    return "block" if offset and rest[:1] and _PAIRS.get(text[offset - 1]) == rest[0] else "line"


def only_closers(rest_of_line: str) -> bool:
    """Whether the rest of a line is empty or only what auto-pairing leaves (closers, quotes)."""
    return set(rest_of_line) <= LINE_CLOSERS


def _line_end(text: str, offset: int) -> int:
    ends = [i for i in (text.find("\n", offset), text.find("\r", offset)) if i != -1]
    return min(ends) if ends else len(text)
