"""What the context engine knows about code, independent of the language.

Each language module (``lang_python.py``, ``lang_javascript.py`` …) implements
``LanguageSupport`` with tree-sitter; the engine (``engine.py``) only combines their answers:
the scopes around the cursor, the imports, the names used near the cursor, where an import
leads, and a skeleton (signature, doc, member signatures; bodies elided) of a definition.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tree_sitter import Node, Tree

from code_llama_ls.memory import Lru


def walk(node: Node) -> Iterator[Node]:
    """``node`` and all below it, in document order (depth first, without recursion)."""
    stack = [node]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


@dataclass(frozen=True)
class Scope:
    kind: str  # "module", "class", "function", "method", "impl", "interface", "struct", "namespace" …
    name: str
    header: str  # the scope's first line(s) up to its body, verbatim (e.g. "def f(a, b):")
    start_byte: int
    end_byte: int


@dataclass(frozen=True)
class Import:
    """One imported binding as written in the source.

    ``module`` is the module/path as written (``"os.path"``, ``"./util"``, ``"crate::a::b"``,
    ``"fmt"``, ``"java.util.List"``, ``"foo.h"``); ``name`` the imported symbol or None when the
    module itself is bound; ``alias`` the local name it is bound to (defaults to ``name`` or the
    module's last part); ``level`` the number of leading dots of a Python relative import.
    """

    module: str
    name: str | None = None
    alias: str | None = None
    level: int = 0
    line: int = 0

    @property
    def local_name(self) -> str:
        if self.alias:
            return self.alias
        if self.name:
            return self.name
        return self.module.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Reference:
    """A name chain used near the cursor, e.g. ``("os", "path", "join")`` or ``("parse",)``."""

    parts: tuple[str, ...]
    distance: int  # lines from the cursor (0 = on the cursor line)


@dataclass(frozen=True)
class Definition:
    path: Path
    name: str
    skeleton: str  # signature + doc + member signatures, bodies elided; first line = signature line
    start_line: int = 0


@dataclass
class ParsedFile:
    """A file of the workspace as the context engine sees it (text + tree, cached by the index)."""

    path: Path
    language: str
    source: bytes
    tree: Tree | None
    text: str = field(repr=False, default="")


class Workspace(Protocol):
    """What a language module may ask of the workspace while resolving imports."""

    roots: list[Path]

    def parsed(self, path: Path) -> ParsedFile | None:
        """The file parsed (open documents win over disk); None if missing, ignored or too big."""
        ...

    def is_file(self, path: Path) -> bool: ...

    def is_dir(self, path: Path) -> bool: ...

    def search_paths(self, language: str) -> list[Path]:
        """Extra roots for the language: Python's stdlib/site-packages, C include dirs …"""
        ...


class LanguageSupport(Protocol):
    languages: tuple[str, ...]  # the language names (see languages.py) this module handles

    def scopes(self, tree: Tree, source: bytes, byte_offset: int) -> list[Scope]:
        """Enclosing scopes, outermost first (module first)."""
        ...

    def imports(self, tree: Tree, source: bytes) -> list[Import]: ...

    def references(self, tree: Tree, source: bytes, start_byte: int, end_byte: int, cursor_line: int) -> list[Reference]:
        """Name chains used in [start_byte, end_byte), nearest the cursor first, deduplicated."""
        ...

    def resolve(self, imp: Import, from_path: Path, workspace: Workspace) -> list[Path]:
        """Files the import may refer to, best first (empty when unresolved)."""
        ...

    def definition(self, parsed: ParsedFile, name: str, workspace: Workspace) -> Definition | None:
        """The skeleton of top-level ``name`` in the file (following re-exports where the
        language has them), or None."""
        ...

    def member(self, parsed: ParsedFile, owner: str, name: str) -> Definition | None:
        """The skeleton of ``owner.name`` (a method of a class, a function of a namespace)."""
        ...

    def outline(self, parsed: ParsedFile) -> str:
        """The file's own outline: top-level signatures, bodies elided."""
        ...

    def caches(self) -> dict[str, Lru]:
        """The module's memo tables by name; the context engine sets their bound."""
        ...


@dataclass(frozen=True)
class ContextBlock:
    """Code from elsewhere for the prompt: a definition's skeleton, an outline, a snippet."""

    kind: str  # "definition" | "outline" | "snippet"
    path: str  # shown in the block's header (workspace-relative where possible)
    body: str


@dataclass(frozen=True)
class RangeContext:
    """What an instruct prompt (explain, ask, docstring, tests) may hold about a range of a
    document besides the range itself."""

    scope: str = ""  # the innermost enclosing scope's text, when larger than the range
    imports: str = ""  # the file's import lines, each once, in file order
    definitions: tuple[ContextBlock, ...] = ()  # skeletons of what the range uses
