"""The one entry point from a model's raw text to what an editor shows: plain strings in.

``shape_suggestion(prefix, suffix, language, raw)`` is what the server, ``bench shape`` and the
golden tests call. ``prefix``/``suffix`` may be the whole document on each side of the cursor or
windows around it: the last ``PREFIX_WINDOW_LINES`` lines before the cursor and the first
``SUFFIX_WINDOW_LINES`` after it are all the filters read (the window is parsed on its own, so a
10,000-line file costs what 300 lines do). A language without a grammar is plain text: no
syntax check, brackets and quotes only.
"""

from __future__ import annotations

from code_llama_ls.completion.postprocess import CursorContext, Outcome, postprocess_outcome
from code_llama_ls.context.syntax import completion_scope
from code_llama_ls.documents import Document

PREFIX_WINDOW_LINES = 200
SUFFIX_WINDOW_LINES = 100


def shape_suggestion(prefix: str, suffix: str, language: str, raw: str,
                     truncated: bool = False) -> tuple[str, int] | None:
    """``(text, replace_end)``: insert ``text`` at the cursor, replacing the ``replace_end``
    characters after it on its line; ``None``: show nothing. ``truncated``: the model was
    stopped by ``maxNewTokens`` (its last line is unfinished)."""
    suggestion = shape_outcome(prefix, suffix, language, raw, truncated).suggestion
    return None if suggestion is None else (suggestion.text, suggestion.replace_end)


def shape_outcome(prefix: str, suffix: str, language: str, raw: str, truncated: bool = False) -> Outcome:
    """The suggestion, or why there is none (``complete --verbose`` prints it)."""
    return postprocess_outcome(raw, cursor_context(prefix, suffix, language), truncated)


def cursor_context(prefix: str, suffix: str, language: str) -> CursorContext:
    """What the filters need, read from windows of the text around the cursor."""
    before, after = windows(prefix, suffix)
    document = Document(uri="untitled:shape", text=before + after, version=0, language_id=language)
    offset = len(before)
    return CursorContext.at(document, offset, completion_scope(document, offset))


def windows(prefix: str, suffix: str) -> tuple[str, str]:
    """The last lines of ``prefix`` and the first lines of ``suffix``, cut at line starts."""
    start = len(prefix)
    for _ in range(PREFIX_WINDOW_LINES):
        start = prefix.rfind("\n", 0, start)
        if start == -1:
            break
    end = 0
    for _ in range(SUFFIX_WINDOW_LINES):
        end = suffix.find("\n", end + 1)
        if end == -1:
            break
    return prefix[start + 1:], suffix if end == -1 else suffix[:end]
