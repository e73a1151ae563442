"""Budgeting of infilling prompts: property-style checks on random cases (fixed seed).

Spec: ``len(ids) + max_new_tokens <= max_context_tokens``; the prefix and suffix share what is
left (``available = max_context_tokens - max_new_tokens - 4``) by ``prefix_ratio``; a side that
needs less than its share passes the rest to the other; cuts fall on line boundaries (the prefix
starts at a line start, the suffix ends at a line end or the document end) unless the cursor's
own line is over budget.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling helper, whatever the import mode
from meta_reference import (  # noqa: E402
    NON_ASCII,
    infill_tokenizer,
    insert_non_ascii,
    is_line_start,
    line_starts,
    meta_reference,
    require_fixture,
    tabs_for_indent,
    to_crlf,
    usable_sources,
)

from code_llama_ls.prompts.fim import (  # noqa: E402
    CURSOR_LINE_QUANTUM,
    Budget,
    BudgetError,
    assemble,
    build_infill_prompt,
)

SEED = 7_2026
STRUCTURAL_TOKENS = 4  # BOS, ▁<PRE>, ▁<SUF>, ▁<MID> (spelled out, not read from fim.py)
N_CASES = 400


@pytest.fixture(scope="module")
def fixture_folder() -> str:
    return str(require_fixture())


@pytest.fixture(scope="module")
def tok(fixture_folder):
    return infill_tokenizer(fixture_folder)


@pytest.fixture(scope="module")
def ref(fixture_folder):
    return meta_reference(fixture_folder)


# -- documents ---------------------------------------------------------------------------------

def _synthetic(rng: random.Random) -> str:
    """Documents with traits stdlib files lack: very long lines, lone CR, blank runs, no final
    line break."""
    kind = rng.choice(["long-lines", "lone-cr", "blank-runs", "one-line", "mixed-breaks"])
    words = ["alpha", "beta", "gamma", "    delta", "\tepsilon", "(x, y)", "# note", *NON_ASCII]
    if kind == "one-line":
        return " ".join(rng.choice(words) for _ in range(rng.randint(50, 600)))
    lines = []
    for _ in range(rng.randint(5, 120)):
        if kind == "long-lines" and rng.random() < 0.3:
            lines.append("    " + " ".join(rng.choice(words) for _ in range(rng.randint(80, 400))))
        elif kind == "blank-runs" and rng.random() < 0.4:
            lines.append(rng.choice(["", "   ", "\t"]))
        else:
            lines.append(" " * rng.choice([0, 0, 4, 8]) + " ".join(rng.choice(words) for _ in range(rng.randint(1, 12))))
    if kind == "lone-cr":
        breaks = ["\r"]
    elif kind == "mixed-breaks":
        breaks = ["\n", "\r\n", "\r"]
    else:
        breaks = ["\n"]
    text = "".join(line + rng.choice(breaks) for line in lines)
    return text[:-1] if rng.random() < 0.3 and not text.endswith("\r\n") else text


def _cursor(rng: random.Random, text: str) -> int:
    """A random cursor, never between the \\r and \\n of one line break."""
    cursor = rng.randint(0, len(text))
    if 0 < cursor < len(text) and text[cursor - 1] == "\r" and text[cursor] == "\n":
        cursor += 1
    return cursor


def _random_cases(n: int, seed: int):
    rng = random.Random(seed)
    sources = usable_sources()
    cases = []
    for i in range(n):
        if i % 4 == 3:
            text = _synthetic(rng)
            cursor = _cursor(rng, text)
        else:
            _, text = rng.choice(sources)
            cursor = _cursor(rng, text)
            variant = rng.random()
            if variant < 0.25:
                text, cursor = to_crlf(text, cursor)
            elif variant < 0.45:
                text, cursor = insert_non_ascii(rng, text, cursor)
            elif variant < 0.55:
                text = tabs_for_indent(text)
                cursor = _cursor(rng, text)
        max_context = rng.choice([24, 48, 64, 128, 200, 256, 512, 1024, 2048])
        max_new = rng.randint(0, max_context - STRUCTURAL_TOKENS - 1)
        if rng.random() < 0.6:  # usually a realistic share of the context
            max_new = min(max_new, rng.randint(0, max(1, max_context // 4)))
        ratio = rng.choice([0.0, 0.1, 0.25, 0.5, 0.6, 0.75, 0.9, 1.0, round(rng.random(), 3)])
        mode = rng.choice(["psm", "spm"])
        cases.append((f"{i}", text[:cursor], text[cursor:], Budget(max_context, max_new, ratio), mode))
    return cases


RANDOM_CASES = _random_cases(N_CASES, SEED)


# -- the properties ----------------------------------------------------------------------------

def _previous_line_start(text: str, pos: int) -> int:
    return max(s for s in line_starts(text) if s < pos)


def _next_line_end(text: str, pos: int) -> int:
    return min([s for s in line_starts(text) if s > pos] + [len(text)])


def _check(tok, ref, before: str, after: str, budget: Budget, mode: str, name: str = "") -> dict:
    prompt = build_infill_prompt(tok, before, after, budget, mode)
    available = budget.max_context_tokens - budget.max_new_tokens - STRUCTURAL_TOKENS
    prefix_share = int(available * budget.prefix_ratio)
    suffix_share = available - prefix_share
    where = f"case {name}: {budget}, {mode}, prefix {prompt.prefix[:60]!r}…, suffix …{prompt.suffix[-60:]!r}"

    # The budget holds, and the ids are the exact encoding of the two texts.
    assert len(prompt.ids) + budget.max_new_tokens <= budget.max_context_tokens, where
    assert prompt.prefix_tokens + prompt.suffix_tokens <= available, where
    assert before.endswith(prompt.prefix) and after.startswith(prompt.suffix), where
    assert prompt.ids == assemble(tok, prompt.prefix, prompt.suffix, mode), where
    assert prompt.ids == ref.prompt(prompt.prefix, prompt.suffix, mode), where
    assert prompt.prefix_tokens == len(ref.enc(prompt.prefix)), where
    assert prompt.suffix_tokens == len(ref.enc_infilling(prompt.suffix)), where

    start = len(before) - len(prompt.prefix)  # where the prefix starts in `before`
    end = len(prompt.suffix)  # where the suffix ends in `after`
    prefix_cut, suffix_cut = start > 0, end < len(after)
    # The line nearest the cursor: the cursor's own line, or the line before it when the cursor
    # is at column 0 (fim.py treats that line as "the cursor line" too: when it alone is over
    # budget the prefix is its longest tail that fits rather than empty).
    starts = line_starts(before)
    nearest_line_start = starts[-1] if starts[-1] < len(before) or len(starts) == 1 else starts[-2]
    first_line_end = _next_line_end(after, 0)

    # Cuts fall on line boundaries unless the cursor's line alone is over budget.
    prefix_mid_line = not is_line_start(before, start)
    if prefix_mid_line:
        assert start > nearest_line_start, where
        assert len(ref.enc(before[nearest_line_start:])) > prefix_share, where
    suffix_mid_line = end < len(after) and not is_line_start(after, end)
    if suffix_mid_line:
        assert end < first_line_end, where
        assert len(ref.enc_infilling(after[:first_line_end])) > suffix_share, where

    # Each side gets at least its share (or all it needs); what one side leaves unused goes to
    # the other: one more line (or character, inside an over-long line) would not have fit.
    # The cursor line is budgeted in steps of CURSOR_LINE_QUANTUM tokens (so that the cut does
    # not move on every keystroke), which may leave up to that many tokens of the prefix side
    # unused.
    slack = CURSOR_LINE_QUANTUM
    if prefix_cut:
        extended = before[_previous_line_start(before, start) if not prefix_mid_line else start - 1:]
        grown = len(ref.enc(extended))
        assert grown > prefix_share - slack, where
        if not suffix_cut:
            assert grown + prompt.suffix_tokens > available - slack, where
    if suffix_cut:
        extended = after[:_next_line_end(after, end) if not suffix_mid_line else end + 1]
        grown = len(ref.enc_infilling(extended))
        assert grown + prompt.prefix_tokens > available - slack, where
        assert grown > suffix_share, where
    if prefix_cut and suffix_cut:
        # The prefix goes past its share only with room that the suffix's next line could not use.
        assert prompt.prefix_tokens <= prefix_share or grown + prompt.prefix_tokens > available, where
    return {"prefix_cut": prefix_cut, "suffix_cut": suffix_cut, "prefix_mid_line": prefix_mid_line,
            "suffix_mid_line": suffix_mid_line, "prompt": prompt}


def test_random_budgets_hold_all_properties(tok, ref):
    stats = {"prefix_cut": 0, "suffix_cut": 0, "prefix_mid_line": 0, "suffix_mid_line": 0, "both_cut": 0}
    for name, before, after, budget, mode in RANDOM_CASES:
        result = _check(tok, ref, before, after, budget, mode, name)
        for key in ("prefix_cut", "suffix_cut", "prefix_mid_line", "suffix_mid_line"):
            stats[key] += result[key]
        stats["both_cut"] += result["prefix_cut"] and result["suffix_cut"]
    print(f"\n{len(RANDOM_CASES)} random budget cases: {stats}")
    # The cases exercise what they are meant to.
    assert stats["prefix_cut"] > len(RANDOM_CASES) // 2
    assert stats["suffix_cut"] > len(RANDOM_CASES) // 4
    assert stats["both_cut"] > len(RANDOM_CASES) // 5
    assert stats["prefix_mid_line"] > 0 and stats["suffix_mid_line"] > 0


def test_whole_document_fits(tok, ref):
    before, after = "def f(x):\n    y = x + 1\n    ", "return y\n\nprint(f(2))\n"
    for mode in ("psm", "spm"):
        prompt = build_infill_prompt(tok, before, after, Budget(512, 64, 0.75), mode)
        assert (prompt.prefix, prompt.suffix) == (before, after)
        assert prompt.ids == ref.prompt(before, after, mode)


def _long_document(seed: int = 3) -> str:
    rng = random.Random(seed)
    sources = usable_sources()
    return max((text for _, text in rng.sample(sources, 5)), key=len)


@pytest.mark.parametrize("ratio", [0.5, 0.75, 0.9])
@pytest.mark.parametrize("mode", ["psm", "spm"])
def test_unused_suffix_share_goes_to_the_prefix(tok, ref, ratio, mode):
    text = _long_document()
    before, after = text[: len(text) // 2], "\n)\n"
    budget = Budget(512, 64, ratio)
    available = 512 - 64 - STRUCTURAL_TOKENS
    result = _check(tok, ref, before, after, budget, mode)
    prompt = result["prompt"]
    assert prompt.suffix == after
    assert prompt.prefix_tokens > ratio * available
    # Nearly all of the rest: short of it by less than one more line's tokens.
    assert prompt.prefix_tokens + prompt.suffix_tokens > available - 40


@pytest.mark.parametrize("ratio", [0.5, 0.75, 0.9, 1.0])
@pytest.mark.parametrize("mode", ["psm", "spm"])
def test_unused_prefix_share_goes_to_the_suffix(tok, ref, ratio, mode):
    text = _long_document()
    before, after = "import os\n\n", text
    budget = Budget(512, 64, ratio)
    available = 512 - 64 - STRUCTURAL_TOKENS
    result = _check(tok, ref, before, after, budget, mode)
    prompt = result["prompt"]
    assert prompt.prefix == before
    assert prompt.suffix_tokens > (1 - ratio) * available
    assert prompt.prefix_tokens + prompt.suffix_tokens > available - 40


@pytest.mark.parametrize("ratio", [0.5, 0.75, 0.9])
def test_both_sides_long_split_by_ratio(tok, ref, ratio):
    text = _long_document()
    cursor = text.index("\n", len(text) // 2) + 1
    budget = Budget(1024, 64, ratio)
    available = 1024 - 64 - STRUCTURAL_TOKENS
    result = _check(tok, ref, text[:cursor], text[cursor:], budget, "psm")
    prompt = result["prompt"]
    assert result["prefix_cut"] and result["suffix_cut"]
    assert int(available * ratio) - 40 < prompt.prefix_tokens <= int(available * ratio)
    assert prompt.suffix_tokens >= available - int(available * ratio) - 40


def test_prefix_starts_on_an_indented_line_start(tok, ref):
    """Cut prefixes start at column 0 of a line, keeping its indentation (the case where a plain
    transformers encode goes wrong)."""
    text = _long_document()
    indented = 0
    rng = random.Random(11)
    for _ in range(40):
        cursor = rng.randint(len(text) // 3, len(text))
        prompt = _check(tok, ref, text[:cursor], text[cursor:], Budget(256, 48, 0.75), "psm")["prompt"]
        indented += prompt.prefix[:1] in (" ", "\t")
    assert indented >= 10


def test_over_long_cursor_line_is_cut_inside_the_line(tok, ref):
    line = "    value = [" + ", ".join(str(i) for i in range(600)) + "]"
    before = "def f():\n" + line[: len(line) // 2]
    after = line[len(line) // 2:] + "\n    return value\n"
    for mode in ("psm", "spm"):
        result = _check(tok, ref, before, after, Budget(128, 32, 0.5), mode)
        assert result["prefix_mid_line"] and result["suffix_mid_line"]
        assert result["prompt"].prefix and result["prompt"].suffix


def test_crlf_cuts_never_split_a_line_break(tok, ref):
    text, _ = to_crlf(_long_document(), 0)
    rng = random.Random(5)
    for _ in range(40):
        cursor = rng.randint(0, len(text))
        if 0 < cursor < len(text) and text[cursor - 1] == "\r":
            cursor += 1
        before, after = text[:cursor], text[cursor:]
        result = _check(tok, ref, before, after, Budget(200, 40, 0.6), "spm")
        assert not result["prefix_mid_line"] and not result["suffix_mid_line"]
        start, end = len(before) - len(result["prompt"].prefix), len(result["prompt"].suffix)
        assert not (before[start - 1:start] == "\r" and before[start:start + 1] == "\n")
        assert not (after[end - 1:end] == "\r" and after[end:end + 1] == "\n")


@pytest.mark.parametrize("max_context, max_new", [(64, 60), (64, 61), (64, 64), (64, 100), (4, 0), (0, 0)])
def test_no_room_for_a_prompt_is_a_budget_error(tok, max_context, max_new):
    with pytest.raises(BudgetError):
        build_infill_prompt(tok, "x = 1\n", "\n", Budget(max_context, max_new, 0.75), "psm")


def test_smallest_room_still_fits(tok, ref):
    # max_new_tokens = max_context_tokens - 5 leaves one token for the texts.
    result = _check(tok, ref, "def f():\n    return 1\n", "\nprint(f())\n", Budget(64, 59, 0.75), "psm")
    prompt = result["prompt"]
    assert len(prompt.ids) + 59 <= 64
