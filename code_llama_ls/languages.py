"""Which tree-sitter grammar parses a document.

The language comes from the client's ``languageId``, else the file extension. Grammars are the
per-language wheels (``tree-sitter-python`` …); a language whose wheel is not installed, or any
other language, is plain text: completions still work, without syntax-aware context.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from pathlib import PurePosixPath

from tree_sitter import Language


@dataclass(frozen=True)
class LanguageSpec:
    name: str  # our canonical name, also the LSP languageId
    module: str  # the grammar wheel's module
    function: str  # the module's function returning the language pointer
    extensions: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    comment_prefix: str = "//"  # a line comment: prompts show context blocks as comments


LANGUAGES: tuple[LanguageSpec, ...] = (
    LanguageSpec("python", "tree_sitter_python", "language", (".py", ".pyi", ".pyw"), comment_prefix="#"),
    LanguageSpec("javascript", "tree_sitter_javascript", "language", (".js", ".mjs", ".cjs", ".jsx"), ("javascriptreact",)),
    LanguageSpec("typescript", "tree_sitter_typescript", "language_typescript", (".ts", ".mts", ".cts")),
    LanguageSpec("typescriptreact", "tree_sitter_typescript", "language_tsx", (".tsx",)),
    LanguageSpec("rust", "tree_sitter_rust", "language", (".rs",)),
    LanguageSpec("go", "tree_sitter_go", "language", (".go",)),
    LanguageSpec("java", "tree_sitter_java", "language", (".java",)),
    LanguageSpec("c", "tree_sitter_c", "language", (".c", ".h")),
    LanguageSpec("cpp", "tree_sitter_cpp", "language", (".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx")),
)
PLAIN_TEXT = "plaintext"

_BY_ID = {alias: spec for spec in LANGUAGES for alias in (spec.name, *spec.aliases)}
_BY_EXTENSION = {ext: spec for spec in LANGUAGES for ext in spec.extensions}


def language_name(language_id: str | None, uri: str) -> str:
    """Our language name for a document: its languageId if we know it, else its extension."""
    if language_id and language_id in _BY_ID:
        return _BY_ID[language_id].name
    spec = _BY_EXTENSION.get(PurePosixPath(uri).suffix.lower())
    return spec.name if spec else PLAIN_TEXT


def comment_prefix(language: str) -> str:
    """How a line comment starts in ``language`` (``#`` for plain text)."""
    spec = _BY_ID.get(language)
    return spec.comment_prefix if spec else "#"


@cache
def grammar(name: str) -> Language | None:
    """The tree-sitter language for ``name``, or None for plain text / a missing grammar wheel."""
    spec = _BY_ID.get(name)
    if spec is None:
        return None
    try:
        module = importlib.import_module(spec.module)
    except ImportError:
        return None
    return Language(getattr(module, spec.function)())
