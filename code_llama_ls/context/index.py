"""The workspace as the context engine reads it: files parsed on first use and cached.

Open documents win over disk. Files are cached by modification time and size, so the index is
built lazily and stays current incrementally; ignored, binary, non-UTF-8 and oversized files are
never read into context. At most ``max_files`` parsed files are kept (least recently used go),
and ``STATS_PER_FILE`` times as many file-system probes.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from tree_sitter import Parser

from code_llama_ls.context.base import ParsedFile
from code_llama_ls.context.lang_python import python_search_paths
from code_llama_ls.languages import grammar, language_name
from code_llama_ls.context.privacy import IgnoreRules
from code_llama_ls.documents import DocumentStore, uri_to_path
from code_llama_ls.memory import Lru

MAX_FILE_BYTES = 1_000_000
STATS_PER_FILE = 16
"""A resolution probes a few dozen paths per import; most of them are not files."""
STAT_TTL_S = 2.0


class WorkspaceIndex:
    def __init__(self, roots: list[Path], documents: DocumentStore | None, rules: IgnoreRules, *,
                 python_executable: str | None = None, include_dirs: list[str] | tuple[str, ...] = (),
                 max_files: int) -> None:
        self.roots = [root.resolve() for root in roots]
        self.rules = rules
        self._documents = documents
        self._python_executable = python_executable
        self._include_dirs = list(include_dirs)
        self._files: Lru[Path, tuple[tuple[int, int], ParsedFile | None]] = Lru(max_files)
        self._stats: Lru[Path, tuple[float, bool, bool]] = Lru(max_files * STATS_PER_FILE)
        self._lock = threading.Lock()

    def resize(self, max_files: int) -> None:
        with self._lock:
            self._files.resize(max_files)
            self._stats.resize(max_files * STATS_PER_FILE)

    def cache_stats(self) -> dict[str, dict]:
        with self._lock:
            return {"indexFiles": self._files.stats("files"), "indexProbes": self._stats.stats("paths")}

    # -- Workspace protocol -------------------------------------------------------------------

    def parsed(self, path: Path) -> ParsedFile | None:
        path = path.resolve()
        document = self._open_document(path)
        if document is not None:
            return document
        try:
            stat = path.stat()
        except OSError:
            return None
        key = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._files.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        parsed = self._read(path, stat.st_size)
        with self._lock:
            self._files.put(path, (key, parsed))
        return parsed

    def is_file(self, path: Path) -> bool:
        return self._stat(path)[1]

    def is_dir(self, path: Path) -> bool:
        return self._stat(path)[2]

    def search_paths(self, language: str) -> list[Path]:
        if language == "python":
            return list(python_search_paths(self._python_executable))
        if language in ("c", "cpp"):
            found = []
            for entry in self._include_dirs:
                folder = Path(entry).expanduser()
                candidates = [folder] if folder.is_absolute() else [root / folder for root in self.roots]
                found.extend(c for c in candidates if c.is_dir())
            return found
        return []

    # -- helpers --------------------------------------------------------------------------------

    def display_path(self, path: Path) -> str:
        """Workspace-relative, else relative to a search path (``json/decoder.py``), else absolute."""
        for base in [*self.roots, *self.search_paths(language_name(None, str(path)))]:
            if path.is_relative_to(base):
                return path.relative_to(base).as_posix()
        return path.as_posix()

    def _stat(self, path: Path) -> tuple[float, bool, bool]:
        now = time.monotonic()
        with self._lock:
            cached = self._stats.get(path)
        if cached is not None and now - cached[0] < STAT_TTL_S:
            return cached
        entry = (now, path.is_file(), path.is_dir())
        with self._lock:
            self._stats.put(path, entry)
        return entry

    def _open_document(self, path: Path) -> ParsedFile | None:
        if self._documents is None:
            return None
        for document in self._documents:
            if uri_to_path(document.uri) == path:
                if self.rules.is_ignored(path) or document.too_large:
                    return None
                return ParsedFile(path, document.language, document.text.encode("utf-8", "surrogatepass"),
                                  document.tree, document.text)
        return None

    def _read(self, path: Path, size: int) -> ParsedFile | None:
        if size > MAX_FILE_BYTES or self.rules.is_ignored(path):
            return None
        try:
            source = path.read_bytes()
        except OSError:
            return None
        if b"\0" in source[:8192]:
            return None  # binary
        try:
            text = source.decode("utf-8")
        except UnicodeDecodeError:
            return None
        language = language_name(None, str(path))
        lang = grammar(language)
        tree = Parser(lang).parse(source) if lang is not None else None
        return ParsedFile(path, language, source, tree, text)
