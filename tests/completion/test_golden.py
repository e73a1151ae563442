"""Golden post-processing cases: a document with a cursor, raw model output → the expected edit.

Each ``golden/<language>/<case>.toml`` holds:

- ``description``, ``language`` (an LSP languageId) and ``covers`` (the failure modes it shows,
  from :data:`FAILURE_MODES`, or ``clean`` where nothing may be filtered);
- ``document``: the text with one ``║`` at the cursor (``document_crlf = true``: the document's
  line breaks are CRLF; the expected text is then compared with CRLF line breaks too);
- ``raw``: the model's output; ``expected``: the suggestion's text (omitted or ``""``: none);
- ``replace``: how many characters after the cursor the suggestion replaces (default 0);
- ``truncated`` (optional): the model was stopped by ``maxNewTokens``;
- ``scope`` (optional): what :func:`completion_scope` must say at the cursor.

Every case goes through the one entry point the server and ``bench shape`` use:
``shape_suggestion(prefix, suffix, language, raw)``.
"""

from __future__ import annotations

import time
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

from code_llama_ls.completion.shape import shape_suggestion
from code_llama_ls.languages import grammar, language_name
from code_llama_ls.completion.span import completion_scope
from code_llama_ls.documents import Document

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(GOLDEN.glob("*/*.toml"))
CURSOR = "║"
FAILURE_MODES = {
    "sentinel": "sentinel text cut",
    "scope_line": "multi-line output where one line is wanted",
    "scope_block": "multi-line output cut where it closes the cursor's block",
    "echo_rest_of_line": "the rest of the cursor's line echoed",
    "echo_next_lines": "the document's next lines echoed",
    "closing_punctuation": "a rest of line of closers replaced, not duplicated",
    "repetition": "repetition loops",
    "trailing_whitespace": "trailing whitespace",
    "crlf": "CRLF documents get CRLF suggestions",
    "syntax": "suggestions adding tree-sitter ERROR/MISSING nodes cut to a clean part",
}
OTHER_TAGS = {"clean": "nothing to filter", "multi_line": "multi-line kept whole"}
EDITOR_STATES = {  # the states users type in (issue 13): each shown in at least five languages
    "rest_of_block": "an empty line inside a block that has code: the rest of the block, or of the function",
    "block_after_header": "a suggestion that starts with a line break at the end of a code line is a block",
    "auto_closed": "closers left by auto-pairing after the cursor: replaced when written, else kept",
    "fill_in_line": "more code after the cursor: one line; an echoed start of the rest replaced",
    "cut_off_line": "a last line cut off by maxNewTokens dropped",
    "boundary_space": "no doubled space where the suggestion meets the text around it, no trailing whitespace",
    "tabs": "tab indentation stays tabs",
    "near_repetition": "lines repeating with small changes cut at the first repeat",
    "broken_document": "judged by the syntax errors it adds to a file that was already broken",
    "show_nothing": "the right answer is to show nothing",
}


def load(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def open_case(case: dict) -> tuple[Document, int]:
    marked = case["document"]
    if case.get("document_crlf"):
        marked = marked.replace("\n", "\r\n")
    assert marked.count(CURSOR) == 1, "one cursor marker"
    offset = marked.index(CURSOR)
    document = Document(uri=f"file:///golden/case.{case['language']}", text=marked.replace(CURSOR, "", 1),
                        version=1, language_id=case["language"])
    return document, offset


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_golden_case(path: Path):
    case = load(path)
    assert case["language"] == path.parent.name
    assert grammar(language_name(case["language"], "")) is not None, "the grammar wheel is installed"
    document, offset = open_case(case)
    scope = completion_scope(document, offset)
    if "scope" in case:
        assert scope == case["scope"]
    suggestion = shape_suggestion(document.text[:offset], document.text[offset:], document.language, case["raw"],
                                  truncated=case.get("truncated", False))
    expected = case.get("expected", "")
    if case.get("document_crlf"):
        expected = expected.replace("\n", "\r\n")
    if not expected:
        assert suggestion is None
        return
    assert suggestion is not None, "expected a suggestion"
    assert suggestion == (expected, case.get("replace", 0))
    if case.get("document_crlf"):
        assert "\n" not in suggestion[0].replace("\r\n", "")


def test_golden_cases_cover_every_failure_mode_in_two_languages():
    cases = [load(path) for path in CASES]
    assert len(cases) >= 40
    assert len({case["language"] for case in cases}) >= 4
    languages = defaultdict(set)
    for case in cases:
        assert case["covers"], "every case says what it shows"
        for tag in case["covers"]:
            assert tag in FAILURE_MODES or tag in OTHER_TAGS or tag in EDITOR_STATES, tag
            languages[tag].add(case["language"])
    for mode in [*FAILURE_MODES, "clean"]:
        assert len(languages[mode]) >= 2, f"{mode}: {sorted(languages[mode])}"


def test_every_editor_state_is_shown_in_five_languages():
    """Issue 13's states: at least 80 cases, each state in five languages or more, auto-closed
    pairs in Python, JavaScript/TypeScript, Rust, Go and C/C++."""
    cases = [load(path) for path in CASES]
    tagged = [case for case in cases if set(case["covers"]) & set(EDITOR_STATES)]
    assert len(tagged) >= 80
    languages = defaultdict(set)
    for case in tagged:
        for tag in set(case["covers"]) & set(EDITOR_STATES):
            languages[tag].add(case["language"])
    for state in EDITOR_STATES:
        assert len(languages[state]) >= 5, f"{state}: {sorted(languages[state])}"
    families = [{"python"}, {"javascript", "typescript"}, {"rust"}, {"go"}, {"c", "cpp"}]
    assert all(family & languages["auto_closed"] for family in families), sorted(languages["auto_closed"])


def test_scope_is_fast_in_a_large_file():
    """The existing tree is used as is: well under a millisecond anywhere in 10,000 lines."""
    chunk = "def f{n}(a, b):\n    # é {{\n    values = [a, b]\n\n    return values\n\n\n"
    text = "".join(chunk.format(n=n) for n in range(1_430))
    document = Document(uri="file:///big.py", text=text, version=1)
    assert document.tree is not None and document.line_count >= 10_000
    middle = text.index("def f715(")
    offsets = [middle - 1, middle + len("def f715(a, b):\n"), middle + len("def f715(a, b):\n    # é {\n    values = ["),
               len(text)]
    for offset in offsets:
        best = min(_timed(completion_scope, document, offset) for _ in range(20))
        assert best < 0.001, (offset, best)


def _timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started
