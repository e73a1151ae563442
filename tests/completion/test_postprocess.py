"""Post-processing of raw model output into the suggestion shown."""

from __future__ import annotations

import pytest

from code_llama_ls.completion.postprocess import (
    SENTINEL_TEXTS,
    CursorContext,
    cut_at_sentinel,
    drop_echoed_line_suffix,
    limit_to_scope,
    postprocess,
)

LINE_END = CursorContext(line_suffix="", scope="line")


def accepted(result, line_suffix: str) -> str | None:
    """The rest of the cursor's line once the suggestion is accepted.

    A suggestion is its text, inserted at the cursor, or an object with ``text`` and
    ``replace_end`` (how many characters after the cursor it replaces).
    """
    if result is None:
        return None
    text, replace_end = getattr(result, "text", result), getattr(result, "replace_end", 0)
    return text + line_suffix[replace_end:]
BLOCK = CursorContext(line_suffix="", scope="block")


@pytest.mark.parametrize("sentinel", SENTINEL_TEXTS)
def test_sentinel_text_is_cut(sentinel: str):
    assert cut_at_sentinel(f"return x  {sentinel} junk") == "return x"
    assert postprocess(f"return x{sentinel}\nmore", BLOCK) == "return x"
    assert postprocess(sentinel, BLOCK) is None


def test_the_first_sentinel_wins():
    assert cut_at_sentinel("a <MID> b ▁<EOT> c") == "a"
    assert cut_at_sentinel("a▁<EOT>b<EOT>") == "a"
    assert cut_at_sentinel("no sentinel  ") == "no sentinel  "


def test_single_line_mid_line():
    cursor = CursorContext(line_suffix=")", scope="line")
    # One line, and the ")" already after the cursor is not doubled.
    assert accepted(postprocess("base, name)\n    more = 1\n", cursor), ")") == "base, name)"
    assert postprocess("base, name\r\nmore", CursorContext(line_suffix="", scope="line")) == "base, name"


def test_multi_line_at_an_empty_python_block_body():
    raw = "total = 0\n    for x in xs:\n        total += x\n    return total\n\n\n"
    assert postprocess(raw, BLOCK) == "total = 0\n    for x in xs:\n        total += x\n    return total"


def test_multi_line_at_an_empty_js_block_body():
    raw = "const x = 1;\n  return x;\n"
    assert postprocess(raw, BLOCK) == "const x = 1;\n  return x;"
    # The same output at a line scope keeps only the first line.
    assert postprocess(raw, LINE_END) == "const x = 1;"


def test_echo_of_the_rest_of_the_line_is_dropped():
    assert drop_echoed_line_suffix("base, name)", ")") == "base, name"
    assert drop_echoed_line_suffix("a, b):  ", "):") == "a, b"
    assert drop_echoed_line_suffix("a, b", ")") == "a, b"
    assert drop_echoed_line_suffix("a, b)", "   ") == "a, b)"
    assert accepted(postprocess("x, y)", CursorContext(line_suffix=")  ", scope="line")), ")  ").rstrip() == "x, y)"
    assert accepted(postprocess("y + z", CursorContext(line_suffix=" + z", scope="line")), " + z") == "y + z"
    # Only an echo and nothing new: nothing to show.
    assert postprocess(")", CursorContext(line_suffix=")", scope="line")) is None


@pytest.mark.parametrize("raw", ["", "   ", "\n\n", "\nreturn x", " <EOT>", "</s>"])
def test_empty_suggestions_are_dropped(raw: str):
    assert postprocess(raw, LINE_END) is None


def test_leading_space_of_a_suggestion_is_kept():
    assert postprocess(" + b", LINE_END) == " + b"
    assert limit_to_scope("  x\n  y  \n  ", "block") == "  x\n  y\n  "  # the last blank line places a closer
