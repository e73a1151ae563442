"""The one entry point from a model's raw text to what an editor shows: plain strings in.

``shape_suggestion(prefix, suffix, language, raw)`` is what the server, ``bench shape`` and the
golden tests call. ``prefix``/``suffix`` may be the whole document on each side of the cursor or
windows around it: the last ``PREFIX_WINDOW_LINES`` lines before the cursor and the first
``SUFFIX_WINDOW_LINES`` after it, at most ``WINDOW_CHARS`` each side, are all the filters read
(the window is parsed on its own, so a 10,000-line file costs what 300 lines do). A language without a grammar is plain text: no
syntax check, brackets and quotes only.
"""

from __future__ import annotations

from dataclasses import replace

from code_llama_ls.completion.postprocess import (
    PLAIN_TEXT_NOTE,
    TOP_LEVEL_LINE,
    CursorContext,
    Outcome,
    postprocess_outcome,
)
from code_llama_ls.languages import PLAIN_TEXT
from code_llama_ls.completion.span import INDENTED_LANGUAGES, completion_scope
from code_llama_ls.documents import Document

PREFIX_WINDOW_LINES = 200
SUFFIX_WINDOW_LINES = 100
WINDOW_CHARS = 16_000  # and at most this much text each side


def shape_suggestion(prefix: str, suffix: str, language: str, raw: str,
                     truncated: bool = False) -> tuple[str, int] | None:
    """``(text, replace_end)``: insert ``text`` at the cursor, replacing the ``replace_end``
    characters after it on its line; ``None``: show nothing. ``truncated``: the model was
    stopped by ``maxNewTokens`` (its last line is unfinished)."""
    suggestion = shape_outcome(prefix, suffix, language, raw, truncated).suggestion
    return None if suggestion is None else (suggestion.text, suggestion.replace_end)


def shape_outcome(prefix: str, suffix: str, language: str, raw: str, truncated: bool = False) -> Outcome:
    """The suggestion, or why there is none (``complete --verbose`` prints it); its ``note``
    says when an unknown language was shaped as plain text."""
    cursor = cursor_context(prefix, suffix, language)
    outcome = postprocess_outcome(raw, cursor, truncated)
    return replace(outcome, note=PLAIN_TEXT_NOTE) if cursor.language == PLAIN_TEXT else outcome


def cursor_context(prefix: str, suffix: str, language: str) -> CursorContext:
    """What the filters need, read from windows of the text around the cursor."""
    before, after = windows(prefix, suffix, language)
    document = Document(uri="untitled:shape", text=before + after, version=0, language_id=language)
    offset = len(before)
    cut_short = len(after) < len(suffix) and not TOP_LEVEL_LINE.match(suffix, len(after))
    return CursorContext.at(document, offset, completion_scope(document, offset), cut_short)


def windows(prefix: str, suffix: str, language: str = "") -> tuple[str, str]:
    """The last lines of ``prefix`` and the first lines of ``suffix``, cut where a top-level
    statement starts (a line at column 0 that starts with a name, a decorator or a directive),
    so the window does not begin or end inside a string, a comment or a definition; a cut at a
    plain line start where there is none."""
    start = len(prefix)
    for _ in range(PREFIX_WINDOW_LINES):
        start = prefix.rfind("\n", 0, start)
        if start == -1:
            break
    if start != -1:
        start = _past_open_literal(prefix, start, language)
        top = TOP_LEVEL_LINE.search(prefix, start)
        start = top.start() if top else start + 1
    end = 0
    for _ in range(SUFFIX_WINDOW_LINES):
        end = suffix.find("\n", end + 1)
        if end == -1:
            break
    if end != -1:
        tops = [match.start() for match in TOP_LEVEL_LINE.finditer(suffix, 0, end + 1)]
        end = tops[-1] if tops else end
    before, after = prefix[max(start, 0):], suffix if end == -1 else suffix[:end]
    if len(before) > WINDOW_CHARS:  # long lines (minified code, data): characters bound it too
        cut = len(before) - WINDOW_CHARS
        line_start = before.find("\n", cut, len(before) - len(before.rsplit("\n", 1)[-1]))
        before = before[cut:] if line_start == -1 else before[line_start + 1:]
    if len(after) > WINDOW_CHARS:
        line_end = after.rfind("\n", len(after.split("\n", 1)[0]), WINDOW_CHARS)
        after = after[:WINDOW_CHARS] if line_end == -1 else after[:line_end]
    return before, after


def _past_open_literal(text: str, start: int, language: str) -> int:
    """``start``, or the end of the Python triple-quoted string or the block comment that is
    open there (a module docstring, a licence header): counted with ``str`` searches, which
    stay fast on a whole 10,000-line prefix."""
    if language in INDENTED_LANGUAGES:
        for quote in ('"""', "'''"):
            if text.count(quote, 0, start) % 2:
                end = text.find(quote, start)
                return start if end == -1 else end + len(quote)
        return start
    opened, closed = text.rfind("/*", 0, start), text.rfind("*/", 0, start)
    if opened > closed:
        end = text.find("*/", start)
        return start if end == -1 else end + 2
    return start
