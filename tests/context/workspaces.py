"""What the language-module tests share: parsing a text, writing a workspace, reading it back."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tree_sitter import Parser

from code_llama_ls.context.base import ParsedFile
from code_llama_ls.languages import grammar, language_name


def parse(text: str, path: Path, language: str | None = None) -> ParsedFile:
    language = language or language_name(None, str(path))
    source = text.encode()
    return ParsedFile(path, language, source, Parser(grammar(language)).parse(source), text)


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


class DiskWorkspace:
    """The least a language module may ask of a workspace: files of its languages parsed from disk."""

    def __init__(self, roots: list[Path], languages: tuple[str, ...], search: dict[str, list[Path]] | None = None) -> None:
        self.roots = roots
        self._languages = languages
        self._search = search or {}
        self._cache: dict[Path, ParsedFile] = {}
        self.parsed_paths: list[Path] = []

    def parsed(self, path: Path) -> ParsedFile | None:
        if not path.is_file() or language_name(None, str(path)) not in self._languages:
            return None
        if path not in self._cache:
            self.parsed_paths.append(path)
            self._cache[path] = parse(path.read_text(encoding="utf-8"), path)
        return self._cache[path]

    def is_file(self, path: Path) -> bool:
        return path.is_file()

    def is_dir(self, path: Path) -> bool:
        return path.is_dir()

    def search_paths(self, language: str) -> list[Path]:
        return list(self._search.get(language, []))
