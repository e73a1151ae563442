"""The context engine: what the model should see besides the text around the cursor.

In priority order: skeletons of the definitions that the code near the cursor uses (resolved
statically through the imports), the file's own outline, and snippets of recently edited or
viewed regions of other open files ranked against the cursor window. The language modules do
the parsing; this module combines their answers and keeps them stable while the user types
within a word, so that the packed prompt does not change on every keystroke.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from tree_sitter import Tree

from code_llama_ls.context.base import (ContextBlock, Definition, Import, LanguageSupport, ParsedFile, RangeContext,
                                        Reference)
from code_llama_ls.context.index import WorkspaceIndex
from code_llama_ls.context.lang_c import CSupport
from code_llama_ls.context.lang_go import GoSupport
from code_llama_ls.context.lang_java import JavaSupport
from code_llama_ls.context.lang_javascript import JavaScriptSupport
from code_llama_ls.context.lang_python import PythonSupport
from code_llama_ls.context.lang_rust import RustSupport
from code_llama_ls.context.privacy import IGNORE_FILE_SPECS, IgnoreRules
from code_llama_ls.documents import Document, DocumentStore, document_path, to_byte, uri_to_path
from code_llama_ls.memory import Lru, cache_stats
from code_llama_ls.settings import Settings

SUPPORTS: dict[str, LanguageSupport] = {
    name: support
    for support in (PythonSupport(), JavaScriptSupport(), RustSupport(), GoSupport(), JavaSupport(),
                    CSupport())
    for name in support.languages
}
MAX_DEFINITIONS = 8
MAX_SNIPPETS = 3
SNIPPET_LINES = 20
OUTLINE_MAX_LINES = 60
OUTLINE_MIN_FILE_LINES = 200
"""A shorter file is (nearly) all in the local prefix already: its outline would repeat it."""
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class _Region:
    uri: str
    line: int


class ContextEngine:
    def __init__(self, settings: Callable[[], Settings], documents: DocumentStore, roots: list[Path]) -> None:
        self._settings = settings
        self._documents = documents
        self._roots = list(roots)
        self._index: WorkspaceIndex | None = None
        self._index_key: tuple | None = None
        self._definitions: Lru[tuple, list[ContextBlock]] = Lru(settings().context_cache_entries)
        self._outlines: Lru[str, tuple[tuple, ContextBlock | None]] = Lru(settings().context_cache_entries)
        self._recent: deque[_Region] = deque(maxlen=settings().snippet_regions)

    # -- workspace ------------------------------------------------------------------------------

    def set_roots(self, roots: list[Path]) -> None:
        self._roots = list(roots)
        self._index = None

    @property
    def index(self) -> WorkspaceIndex:
        settings = self._settings()
        key = (tuple(self._roots), tuple(settings.ignore_patterns), settings.python_executable,
               tuple(settings.include_dirs))
        if self._index is None or key != self._index_key:
            rules = IgnoreRules(self._roots, settings.ignore_patterns)
            self._index = WorkspaceIndex(self._roots, self._documents, rules,
                                         python_executable=settings.python_executable,
                                         include_dirs=settings.include_dirs, max_files=settings.index_max_files)
            self._index_key = key
            self._definitions.clear()
        return self._index

    # -- caches ---------------------------------------------------------------------------------

    def _follow_bounds(self, settings: Settings) -> None:
        """Cache bounds follow the settings at every request."""
        self.index.resize(settings.index_max_files)
        for cache in self._memo_tables().values():
            cache.resize(settings.context_cache_entries)
        if self._recent.maxlen != settings.snippet_regions:
            self._recent = deque(self._recent, maxlen=settings.snippet_regions)

    def _memo_tables(self) -> dict[str, Lru]:
        tables = {"contextDefinitions": self._definitions, "outlines": self._outlines, "ignoreFiles": IGNORE_FILE_SPECS}
        for support in SUPPORTS.values():
            tables.update(support.caches())
        return tables

    def cache_stats(self) -> dict[str, dict]:
        """Each cache of the context engine: ``{size, bound, unit}`` by name (the open documents
        are bounded by what the editor keeps open)."""
        return {"documents": cache_stats(sum(1 for _ in self._documents), None, "documents"),
                "snippetRegions": cache_stats(len(self._recent), self._recent.maxlen, "regions"),
                **self.index.cache_stats(),
                **{name: cache.stats("entries") for name, cache in self._memo_tables().items()}}

    def is_ignored(self, uri: str) -> bool:
        path = uri_to_path(uri)
        return self.index.rules.is_ignored(path if path is not None else Path(uri))

    # -- recent regions -------------------------------------------------------------------------

    def note_edit(self, uri: str, line: int) -> None:
        self._note(_Region(uri, line))

    def note_view(self, uri: str, line: int) -> None:
        self._note(_Region(uri, line))

    def _note(self, region: _Region) -> None:
        for i, existing in enumerate(self._recent):  # one entry per nearby region
            if existing.uri == region.uri and abs(existing.line - region.line) < SNIPPET_LINES // 2:
                del self._recent[i]
                break
        self._recent.append(region)

    # -- collecting -----------------------------------------------------------------------------

    def collect(self, document: Document, offset: int) -> list[ContextBlock]:
        """Context blocks for a cursor, highest priority first."""
        settings = self._settings()
        if not settings.context_enabled or document.too_large:
            return []
        self._follow_bounds(settings)
        cursor_line = document.position_at(offset, "utf-32").line
        blocks: list[ContextBlock] = []
        support = SUPPORTS.get(document.language)
        tree = document.tree if support is not None else None
        if support is not None and tree is not None:
            blocks.extend(self._definition_blocks(document, offset, cursor_line, support, tree, settings))
            outline = self._outline_block(document, support) if document.line_count > OUTLINE_MIN_FILE_LINES else None
            if outline is not None:
                blocks.append(outline)
        blocks.extend(self._snippet_blocks(document, cursor_line, settings))
        return blocks

    def about_range(self, document: Document, start: int, end: int) -> RangeContext:
        """What an instruct prompt (explain, ask, docstring, tests) may hold about
        ``document[start:end]`` (string offsets): its enclosing scope and the file's imports
        (``scope_and_imports``), and the skeletons of what it uses, resolved through the imports
        as for completions."""
        definitions = tuple(self._definitions_in_range(document, start, end))
        return replace(scope_and_imports(document, start, end), definitions=definitions)

    def _definitions_in_range(self, document: Document, start: int, end: int) -> list[ContextBlock]:
        support = SUPPORTS.get(document.language)
        tree = document.tree if support is not None and not document.too_large else None
        if support is None or tree is None or not self._settings().context_enabled:
            return []
        self._follow_bounds(self._settings())
        source = document.text.encode("utf-8", "surrogatepass")
        line = document.position_at(start, "utf-32").line
        references = support.references(tree, source, to_byte(document.text, start),
                                        to_byte(document.text, end), line)
        imports = tuple(support.imports(tree, source))
        return self._resolve_all(support, references, imports, document_path(document.uri))

    def _definition_blocks(self, document: Document, offset: int, cursor_line: int, support: LanguageSupport,
                           tree, settings: Settings) -> list[ContextBlock]:
        first = max(cursor_line - settings.context_lines_before, 0)
        last = min(cursor_line + settings.context_lines_after, document.line_count - 1)
        window_start = document.line_range(first)[0]
        source = document.text.encode("utf-8", "surrogatepass")
        start_byte = to_byte(document.text, window_start)
        end_byte = to_byte(document.text, offset)
        after_end = to_byte(document.text, document.line_range(last)[1])
        references = support.references(tree, source, start_byte, end_byte, cursor_line)
        references += [r for r in support.references(tree, source, end_byte, after_end, cursor_line)
                       if r not in references]
        imports = tuple(support.imports(tree, source))
        key = (document.uri, tuple(r.parts for r in references), imports)
        cached = self._definitions.get(key)
        if cached is not None:
            return cached
        path = document_path(document.uri)
        blocks = self._resolve_all(support, references, imports, path)
        self._definitions.put(key, blocks)
        return blocks

    def _resolve_all(self, support: LanguageSupport, references: list[Reference], imports: tuple[Import, ...],
                     path: Path) -> list[ContextBlock]:
        index = self.index
        by_name: dict[str, list[Import]] = {}
        for imp in imports:
            by_name.setdefault(imp.local_name, []).append(imp)
        wildcard = [imp for imp in imports if imp.name == "*"]
        own_package = [Import(".")]
        seen: set[tuple[Path, str]] = set()
        blocks: list[ContextBlock] = []
        for reference in references:
            if len(blocks) >= MAX_DEFINITIONS:
                break
            for definition in self._definitions_for(support, reference, by_name, wildcard + own_package, path):
                marker = (definition.path, definition.name)
                if marker in seen or definition.path == path:
                    continue
                seen.add(marker)
                blocks.append(ContextBlock("definition", index.display_path(definition.path), definition.skeleton))
                break
        return blocks

    def _definitions_for(self, support: LanguageSupport, reference: Reference, by_name: dict[str, list[Import]],
                         fallbacks: list[Import], path: Path):
        head, rest = reference.parts[0], reference.parts[1:]
        for imp in by_name.get(head, []):
            if imp.name is not None and imp.name != "*":  # from m import head: the whole skeleton
                yield from self._lookup(support, imp, path, imp.name, ())
            elif rest:  # import m; m.x  /  import a.b as c; c.x  /  import m; m.sub.x
                if len(rest) >= 2:
                    sub = Import(f"{imp.module}.{rest[0]}", level=imp.level)
                    yield from self._lookup(support, sub, path, rest[1], ())
                yield from self._lookup(support, imp, path, rest[0], rest[1:2])
        for imp in fallbacks:  # C includes, Go/Java same-package names, Python star imports
            yield from self._lookup(support, imp, path, head, rest[:1])

    def _lookup(self, support: LanguageSupport, imp: Import, path: Path, name: str, member: tuple[str, ...]):
        index = self.index
        for candidate in support.resolve(imp, path, index)[:4]:
            parsed = index.parsed(candidate)
            if parsed is None:
                continue
            definition = _member_or_definition(support, parsed, name, member, index)
            if definition is not None:
                yield definition

    def _outline_block(self, document: Document, support: LanguageSupport) -> ContextBlock | None:
        # Recomputed only when the number of lines changes: typing within a line keeps it stable.
        key = (document.line_count, document.language)
        cached = self._outlines.get(document.uri)
        if cached is not None and cached[0] == key:
            return cached[1]
        path = document_path(document.uri)
        parsed = ParsedFile(path, document.language, document.text.encode("utf-8", "surrogatepass"),
                            document.tree, document.text)
        outline = support.outline(parsed).strip("\n")
        lines = outline.split("\n")[:OUTLINE_MAX_LINES] if outline else []
        block = ContextBlock("outline", self.index.display_path(path), "\n".join(lines)) if lines else None
        self._outlines.put(document.uri, (key, block))
        return block

    def _snippet_blocks(self, document: Document, cursor_line: int, settings: Settings) -> list[ContextBlock]:
        first = max(cursor_line - SNIPPET_LINES, 0)
        window_lines = [document.line_text(i) for i in range(first, cursor_line + 1)]
        window_words = set(_WORD.findall("\n".join(window_lines)))
        local = {line.strip() for line in window_lines if line.strip()}
        if not window_words:
            return []
        scored: list[tuple[float, ContextBlock]] = []
        for region in reversed(self._recent):
            if region.uri == document.uri or region.uri not in self._documents or self.is_ignored(region.uri):
                continue
            other = self._documents.get(region.uri)
            if other.too_large:
                continue
            start = max(min(region.line, other.line_count - 1) - SNIPPET_LINES // 2, 0)
            end = min(start + SNIPPET_LINES, other.line_count)
            lines = [other.line_text(i) for i in range(start, end)]
            nonblank = [line.strip() for line in lines if line.strip()]
            if not nonblank or sum(line in local for line in nonblank) > len(nonblank) / 2:
                continue  # mostly repeats the local window
            words = set(_WORD.findall("\n".join(lines)))
            score = len(words & window_words) / len(words | window_words)
            if score > 0:
                path = document_path(other.uri)
                scored.append((score, ContextBlock("snippet", self.index.display_path(path), "\n".join(lines))))
        scored.sort(key=lambda item: -item[0])
        return [block for _, block in scored[:MAX_SNIPPETS]]


def scope_and_imports(document: Document, start: int, end: int) -> RangeContext:
    """The part of ``ContextEngine.about_range`` that needs no workspace, so that a prompt built
    without an engine still shows where the range sits: the innermost scope around it (below the
    module, larger than the range) and the file's import lines. Gathered whether or not context
    is enabled in the settings: both come from the file itself."""
    support = SUPPORTS.get(document.language)
    tree = document.tree if support is not None and not document.too_large else None
    if support is None or tree is None:
        return RangeContext()
    source = document.text.encode("utf-8", "surrogatepass")
    start_byte, end_byte = to_byte(document.text, start), to_byte(document.text, end)
    return RangeContext(_enclosing_scope(support, tree, source, start_byte, end_byte),
                        _import_lines(document, support, tree, source))


def _enclosing_scope(support: LanguageSupport, tree: Tree, source: bytes, start_byte: int, end_byte: int) -> str:
    around = [scope for scope in support.scopes(tree, source, start_byte)
              if scope.kind != "module" and scope.start_byte <= start_byte and scope.end_byte >= end_byte
              and (scope.end_byte - scope.start_byte) > (end_byte - start_byte) + 1]
    if not around:
        return ""
    innermost = around[-1]
    return source[innermost.start_byte:innermost.end_byte].decode("utf-8", "surrogatepass")


def _import_lines(document: Document, support: LanguageSupport, tree: Tree, source: bytes) -> str:
    lines: list[str] = []
    for imp in support.imports(tree, source):
        if 0 <= imp.line < document.line_count:
            line = document.line_text(imp.line)
            if line.strip() and line not in lines:
                lines.append(line)
    return "\n".join(lines)


def _member_or_definition(support: LanguageSupport, parsed: ParsedFile, name: str, member: tuple[str, ...],
                          index: WorkspaceIndex) -> Definition | None:
    definition = support.definition(parsed, name, index)
    if definition is None or not member:
        return definition
    target = index.parsed(definition.path) if definition.path != parsed.path else parsed
    if target is not None:
        found = support.member(target, definition.name, member[0])
        if found is not None:
            return found
    return definition
