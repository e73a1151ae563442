"""Open documents: text and tree-sitter tree kept together, both updated on each edit.

Positions arrive in the negotiated LSP position encoding (UTF-16 by default); internally a
position is an offset into the Python string (code points). Line breaks are those of LSP:
``\\n``, ``\\r\\n`` and ``\\r``. A column past the end of its line means the line's end (before
its line break), as the spec says; a column inside a character (between the two UTF-16 units of a
surrogate pair, or among the UTF-8 bytes of one character) means the start of that character. Each incremental change edits the tree-sitter tree; the tree is
reparsed (incrementally) when it is next used, so a burst of keystrokes costs one parse, not one
per keystroke (a reparse of a 200,000-line Python file takes about a second).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

from tree_sitter import Parser, Point, Tree

from code_llama_ls.languages import grammar, language_name

LINE_BREAK = re.compile(r"\r\n|\r|\n")
MAX_DOCUMENT_CHARS = 8_000_000
"""Larger documents are kept in sync but never parsed nor sent to a model."""


class PositionError(ValueError):
    """A position outside the document (or negative)."""


class DocumentError(ValueError):
    """A document we cannot work on (unknown, too large, binary)."""


@dataclass(frozen=True)
class Position:
    line: int
    character: int


Encoding = Literal["utf-8", "utf-16", "utf-32"]
ENCODINGS: tuple[Encoding, ...] = ("utf-8", "utf-16", "utf-32")


def position_encoding(negotiated: object) -> Encoding:
    """The negotiated position encoding as a plain name (LSP's default, UTF-16, when there is none).

    pygls hands over either a ``PositionEncodingKind`` member, whose ``str()`` is
    ``"PositionEncodingKind.Utf16"``, or the client's own string: compare values, never ``str()``.
    """
    if negotiated is None:
        return "utf-16"
    value = getattr(negotiated, "value", negotiated)
    if value not in ENCODINGS:
        raise ValueError(f"unknown position encoding {negotiated!r}; expected one of {', '.join(ENCODINGS)}")
    return value


def _units(char: str, encoding: Encoding) -> int:
    if encoding == "utf-16":
        return 2 if ord(char) > 0xFFFF else 1
    if encoding == "utf-8":
        return len(char.encode("utf-8", "surrogatepass"))
    if encoding == "utf-32":
        return 1
    raise ValueError(f"unknown position encoding {encoding!r}")


@dataclass
class Document:
    uri: str
    text: str
    version: int
    language_id: str = ""
    language: str = field(init=False)
    _tree: Tree | None = field(init=False, default=None, repr=False)
    _stale: bool = field(init=False, default=True, repr=False)  # edits not yet parsed
    _line_starts: list[int] = field(init=False, repr=False)
    _parser: Parser | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.language = language_name(self.language_id, self.uri)
        self._line_starts = self._compute_line_starts(0, len(self.text), [0])
        lang = grammar(self.language)
        if lang is not None:
            self._parser = Parser(lang)

    @property
    def tree(self) -> Tree | None:
        """The syntax tree of the current text (None for plain text or a too large document)."""
        if self._stale:
            self._reparse()
        return self._tree

    # -- lines and positions ------------------------------------------------------------

    @property
    def line_count(self) -> int:
        return len(self._line_starts)

    @property
    def too_large(self) -> bool:
        return len(self.text) > MAX_DOCUMENT_CHARS

    def _compute_line_starts(self, start: int, end: int, into: list[int]) -> list[int]:
        into.extend(m.end() for m in LINE_BREAK.finditer(self.text, start, end))
        return into

    def line_range(self, line: int) -> tuple[int, int]:
        """Offsets of the line's first character and of its end (before the line break)."""
        start = self._line_starts[line]
        end = self._line_starts[line + 1] if line + 1 < len(self._line_starts) else len(self.text)
        while end > start and self.text[end - 1] in "\r\n":
            end -= 1
        return start, end

    def line_text(self, line: int) -> str:
        start, end = self.line_range(line)
        return self.text[start:end]

    def offset_at(self, position: Position, encoding: Encoding = "utf-16", *, clamp: bool = False) -> int:
        """String offset of an LSP position.

        A character past the end of its line means the line's end (the LSP rule); one inside a
        character means that character's start. A line past the end of the document is an error
        unless ``clamp`` (used for edits, where clients address the end of the document as the
        line after the last).
        """
        if position.line < 0 or position.character < 0:
            raise PositionError(f"negative position {position.line}:{position.character}")
        if position.line >= len(self._line_starts):
            if clamp:
                return len(self.text)
            count = len(self._line_starts)
            raise PositionError(f"line {position.line} is past the end of {self.uri} "
                                f"({count} {'line' if count == 1 else 'lines'})")
        start, end = self.line_range(position.line)
        if encoding == "utf-32" or self.text.isascii():
            return min(start + position.character, end)
        units = 0
        offset = start
        while offset < end:
            units += _units(self.text[offset], encoding)
            if units > position.character:
                break
            offset += 1
        return offset

    def position_at(self, offset: int, encoding: Encoding = "utf-16") -> Position:
        line = bisect_right(self._line_starts, offset) - 1
        start = self._line_starts[line]
        segment = self.text[start:offset]
        if encoding == "utf-32" or segment.isascii():
            return Position(line, len(segment))
        return Position(line, sum(_units(c, encoding) for c in segment))

    # -- edits ---------------------------------------------------------------------------

    def _byte_point(self, offset: int) -> tuple[int, Point]:
        """tree-sitter's byte offset and (row, byte column) of a string offset."""
        line = bisect_right(self._line_starts, offset) - 1
        line_start = self._line_starts[line]
        if self.text.isascii():
            return offset, Point(line, offset - line_start)
        column = len(self.text[line_start:offset].encode("utf-8", "surrogatepass"))
        return len(self.text[:line_start].encode("utf-8", "surrogatepass")) + column, Point(line, column)

    def apply_change(self, text: str, start: Position | None = None, end: Position | None = None,
                     encoding: Encoding = "utf-16") -> None:
        """Apply one ``TextDocumentContentChangeEvent`` (no range: the whole text)."""
        if start is None or end is None:
            self.text = text
            self._line_starts = self._compute_line_starts(0, len(text), [0])
            self._tree, self._stale = None, True
            return
        a = self.offset_at(start, encoding, clamp=True)
        b = max(a, self.offset_at(end, encoding, clamp=True))
        incremental = self._tree is not None
        if incremental:
            start_byte, start_point = self._byte_point(a)
            old_end_byte, old_end_point = self._byte_point(b)
        old_len = len(self.text)
        self.text = self.text[:a] + text + self.text[b:]
        self._splice_line_starts(a, b, len(self.text) - old_len)
        if incremental and self._tree is not None:
            new_end_byte, new_end_point = self._byte_point(a + len(text))
            self._tree.edit(start_byte, old_end_byte, new_end_byte, start_point, old_end_point, new_end_point)
        self._stale = True

    def _splice_line_starts(self, a: int, b: int, delta: int) -> None:
        """Recompute the line starts around an edit of old ``[a, b)``; shift the rest."""
        starts = self._line_starts
        first = max(bisect_right(starts, a) - 2, 0)  # one line early: a "\r" + "\n" may join
        last = bisect_right(starts, b) + 1  # one line late, for the same reason
        head = starts[: first + 1]
        tail = [s + delta for s in starts[last:]]
        region_end = tail[0] if tail else len(self.text)
        middle = [m.end() for m in LINE_BREAK.finditer(self.text, head[-1], region_end)]
        if tail and middle and middle[-1] == region_end:
            middle.pop()
        self._line_starts = head + middle + tail

    def _reparse(self) -> None:
        self._stale = False
        if self._parser is None or self.too_large:
            self._tree = None
            return
        source = self.text.encode("utf-8", "surrogatepass")
        self._tree = self._parser.parse(source, self._tree) if self._tree is not None else self._parser.parse(source)


class DocumentStore:
    """The open documents, by URI."""

    def __init__(self) -> None:
        self._documents: dict[str, Document] = {}

    def open(self, uri: str, text: str, version: int, language_id: str = "") -> Document:
        document = Document(uri=uri, text=text, version=version, language_id=language_id)
        self._documents[uri] = document
        return document

    def get(self, uri: str) -> Document:
        document = self._documents.get(uri)
        if document is None:
            raise DocumentError(f"document {uri} is not open")
        return document

    def close(self, uri: str) -> None:
        self._documents.pop(uri, None)

    def __contains__(self, uri: str) -> bool:
        return uri in self._documents

    def __iter__(self):
        return iter(self._documents.values())


def uri_to_path(uri: str) -> Path | None:
    """The file a ``file:`` URI names; None for any other scheme."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


def document_path(uri: str) -> Path:
    """The path a document goes by: its file, or for a URI of another scheme (an unsaved buffer)
    the URI itself as a path, which names no file but keeps the document's name."""
    return uri_to_path(uri) or Path(uri)


def to_byte(text: str, offset: int) -> int:
    """tree-sitter's byte offset of string offset ``offset`` in ``text``."""
    return offset if text.isascii() else len(text[:offset].encode("utf-8", "surrogatepass"))


def to_char(source: bytes, byte_offset: int, text: str) -> int:
    """The string offset in ``text`` of tree-sitter's ``byte_offset`` in ``source`` (its UTF-8)."""
    return byte_offset if text.isascii() else len(source[:byte_offset].decode("utf-8", "surrogatepass"))
