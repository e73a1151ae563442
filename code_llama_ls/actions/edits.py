"""Edits as plain values: text changes per file, one action's edit over files, unified diffs."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class TextChange:
    start: int  # string offsets into the original text
    end: int
    text: str

    def apply(self, original: str) -> str:
        return original[: self.start] + self.text + original[self.end:]


@dataclass
class FileChange:
    path: Path
    original: str | None  # None: the file is created
    changes: list[TextChange] = field(default_factory=list)
    uri: str | None = None  # an open document's URI and the version the changes were computed on
    version: int | None = None

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
            change.path.write_text(change.new_text(), encoding="utf-8")
