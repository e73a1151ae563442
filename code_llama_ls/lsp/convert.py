"""What both handler modules need to read and write LSP values: positions and ranges in the
negotiated encoding, and params as plain dicts."""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from code_llama_ls.documents import Document, Encoding, Position


def offsets(document: Document, range_: types.Range, encoding: Encoding) -> tuple[int, int]:
    """A range's offsets in the document's text, in order (a selection made backwards included)."""
    start = document.offset_at(Position(range_.start.line, range_.start.character), encoding)
    end = document.offset_at(Position(range_.end.line, range_.end.character), encoding)
    return min(start, end), max(start, end)


def lsp_range(document: Document, start: int, end: int, encoding: Encoding) -> types.Range:
    """The range of ``document.text[start:end]`` as the client counts positions."""
    a, b = document.position_at(start, encoding), document.position_at(end, encoding)
    return types.Range(types.Position(a.line, a.character), types.Position(b.line, b.character))


def as_dict(value: Any) -> Any:
    """Params pygls built as named tuples (for methods lsprotocol does not know), as plain data."""
    if hasattr(value, "_asdict"):
        return {k: as_dict(v) for k, v in value._asdict().items()}
    if isinstance(value, list):
        return [as_dict(v) for v in value]
    return value
