"""Edits as plain values: text changes per file, one action's edit over files, unified diffs.

Changes are written with ``\n``; a ``FileChange`` gives each the line break of the file it edits,
so every edit, on disk or as a WorkspaceEdit, keeps a CRLF file CRLF.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from code_llama_ls.documents import LINE_BREAK


@dataclass(frozen=True)
class TextChange:
    start: int  # string offsets into the original text
    end: int
    text: str

    def apply(self, original: str) -> str:
        return original[: self.start] + self.text + original[self.end:]

    def in_line_breaks_of(self, original: str) -> TextChange:
        """This change with every line break made the one of the line it starts on, else the
        file's first, else ``\n``."""
        found = LINE_BREAK.search(original, self.start) or LINE_BREAK.search(original)
        return TextChange(self.start, self.end, LINE_BREAK.sub(found.group() if found else "\n", self.text))


@dataclass
class FileChange:
    path: Path
    original: str | None  # None: the file is created
    changes: Sequence[TextChange] = ()
    uri: str | None = None  # an open document's URI and the version the changes were computed on
    version: int | None = None

    def __post_init__(self) -> None:
        self.changes = tuple(change.in_line_breaks_of(self.original or "") for change in self.changes)

    @property
    def creates(self) -> bool:
        return self.original is None

    def new_text(self) -> str:
        text = self.original or ""
        for change in sorted(self.changes, key=lambda c: c.start, reverse=True):
            text = change.apply(text)
        return text

    def diff(self, root: Path | None = None) -> str:
        name = str(self.path.relative_to(root)) if root is not None and self.path.is_relative_to(root) else str(self.path)
        old = (self.original or "").splitlines(keepends=True)
        new = self.new_text().splitlines(keepends=True)
        return "".join(difflib.unified_diff(old, new, "/dev/null" if self.creates else f"a/{name}", f"b/{name}"))


@dataclass
class ActionEdit:
    """Everything one action changes: applied as one WorkspaceEdit (one undo step)."""

    label: str
    files: list[FileChange]
    message: str = ""

    def diff(self, root: Path | None = None) -> str:
        return "".join(f.diff(root) for f in self.files)

    def write(self) -> None:
        for change in self.files:
            change.path.parent.mkdir(parents=True, exist_ok=True)
            change.path.write_text(change.new_text(), encoding="utf-8", newline="")  # the breaks as they are
