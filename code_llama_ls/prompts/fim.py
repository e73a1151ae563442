"""Fill-in-the-middle prompts for Code Llama, inside a token budget.

Layout (Meta's ``infilling_prompt_tokens``):

- PSM: ``[BOS, ▁<PRE>] + enc(prefix) + [▁<SUF>] + enc_infilling(suffix) + [▁<MID>]``
- SPM: ``[BOS, ▁<PRE>, ▁<SUF>] + enc_infilling(suffix) + [▁<MID>] + enc(prefix)``

Budget: ``len(ids) + max_new_tokens <= max_context_tokens``. Prefix and suffix share what is
left by ``prefix_ratio``; a side that needs less than its share passes the rest to the other.
Cuts fall on line boundaries (the prefix loses whole lines at its start, the suffix at its end).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from code_llama_ls.prompts.tokenization import InfillTokenizer

FimMode = Literal["psm", "spm"]
SPECIAL_TOKENS_PER_PROMPT = 4  # BOS, <PRE>, <SUF>, <MID>
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class BudgetError(ValueError):
    """The settings leave no room for a prompt (max_new_tokens too close to the context)."""


@dataclass(frozen=True)
class Budget:
    max_context_tokens: int
    max_new_tokens: int
    prefix_ratio: float = 0.75

    @property
    def prompt_text_tokens(self) -> int:
        available = self.max_context_tokens - self.max_new_tokens - SPECIAL_TOKENS_PER_PROMPT
        if available <= 0:
            raise BudgetError(
                f"maxContextTokens ({self.max_context_tokens}) leaves no room for a prompt "
                f"after maxNewTokens ({self.max_new_tokens})"
            )
        return available


@dataclass(frozen=True)
class Snippet:
    """Context from elsewhere that went into the prompt's prefix text."""

    path: str
    text: str
    tokens: int


@dataclass(frozen=True)
class InfillPrompt:
    ids: list[int]
    mode: FimMode
    prefix: str
    suffix: str
    prefix_tokens: int
    suffix_tokens: int
    snippets: list[Snippet] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "ids": self.ids,
            "mode": self.mode,
            "prefix": self.prefix,
            "suffix": self.suffix,
            "prefixTokens": self.prefix_tokens,
            "suffixTokens": self.suffix_tokens,
            "snippets": [
                {"path": s.path, "tokens": s.tokens, "text": s.text} for s in self.snippets
            ],
        }


def assemble(tokenizer: InfillTokenizer, prefix: str, suffix: str, mode: FimMode) -> list[int]:
    """The exact prompt ids for these texts, with no budgeting."""
    return _assemble(tokenizer, tokenizer.encode(prefix), tokenizer.encode_infilling(suffix), mode)


def _assemble(tokenizer: InfillTokenizer, prefix_ids: list[int], suffix_ids: list[int], mode: FimMode) -> list[int]:
    s = tokenizer.special
    if mode == "spm":
        return [s.bos, s.prefix, s.suffix, *suffix_ids, s.middle, *prefix_ids]
    return [s.bos, s.prefix, *prefix_ids, s.suffix, *suffix_ids, s.middle]


def build_infill_prompt(
    tokenizer: InfillTokenizer,
    before: str,
    after: str,
    budget: Budget,
    mode: FimMode = "psm",
) -> InfillPrompt:
    """Cut ``before``/``after`` (the document around the cursor) to the budget and encode."""
    available = budget.prompt_text_tokens
    prefix_share = int(available * budget.prefix_ratio)
    suffix_share = available - prefix_share

    prefix_lines, prefix_need = _nearest_lines(tokenizer, _lines_backward(before), available, prefix=True)
    suffix_lines, suffix_need = _nearest_lines(tokenizer, _lines_forward(after), available, prefix=False)

    if suffix_need <= suffix_share:
        suffix, suffix_ids = _fit_suffix(tokenizer, suffix_lines, available)
        prefix, prefix_ids = _fit_prefix(tokenizer, prefix_lines, available - len(suffix_ids))
    else:
        prefix_room = prefix_share if prefix_need > prefix_share else available
        prefix, prefix_ids = _fit_prefix(tokenizer, prefix_lines, prefix_room)
        suffix, suffix_ids = _fit_suffix(tokenizer, suffix_lines, available - len(prefix_ids))

    return InfillPrompt(
        ids=_assemble(tokenizer, prefix_ids, suffix_ids, mode),
        mode=mode,
        prefix=prefix,
        suffix=suffix,
        prefix_tokens=len(prefix_ids),
        suffix_tokens=len(suffix_ids),
    )


def _break_length(text: str, end: int) -> int:
    if end and text[end - 1] == "\n":
        return 2 if end >= 2 and text[end - 2] == "\r" else 1
    return 1 if end and text[end - 1] == "\r" else 0


def _lines_backward(text: str) -> Iterator[str]:
    """Lines of ``text`` with their breaks, nearest the cursor first, read lazily from the end."""
    end = len(text)
    has_cr = "\r" in text  # most files have none: skip a backward scan of the whole text per line
    while end > 0:
        content_end = end - _break_length(text, end)
        newline = text.rfind("\n", 0, content_end)
        start = (max(newline, text.rfind("\r", newline + 1, content_end)) if has_cr else newline) + 1
        yield text[start:end]
        end = start


def _lines_forward(text: str) -> Iterator[str]:
    start = 0
    for match in _LINE_BREAK.finditer(text):
        yield text[start:match.end()]
        start = match.end()
    if start < len(text):
        yield text[start:]


def _nearest_lines(
    tokenizer: InfillTokenizer, lines: Iterator[str], cap: int, *, prefix: bool
) -> tuple[list[str], int]:
    """Lines nearest the cursor until their approximate count passes ``cap``, and that count."""
    taken: list[str] = []
    inner = 0
    for line in lines:
        taken.append(line)
        inner += tokenizer.count_line(line, first=False)
        if inner > cap:
            break
    if prefix and taken:  # the line that starts the prefix carries enc's leading ▁
        inner += tokenizer.count_line(taken[-1], first=True) - tokenizer.count_line(taken[-1], first=False)
    return taken, inner


def _fit_prefix(tokenizer: InfillTokenizer, lines_backward: list[str], room: int) -> tuple[str, list[int]]:
    """The longest run of whole lines ending at the cursor whose ``enc`` fits ``room``."""
    inner, taken = 0, 0
    for line in lines_backward:
        if inner + tokenizer.count_line(line, first=True) > room:
            break
        taken += 1
        inner += tokenizer.count_line(line, first=False)
    text = "".join(reversed(lines_backward[:taken]))
    ids = tokenizer.encode(text)
    while len(ids) > room and taken > 0:  # counts did not add up exactly: drop lines until it fits
        taken -= 1
        text = "".join(reversed(lines_backward[:taken]))
        ids = tokenizer.encode(text)
    if taken == 0 and lines_backward:
        text, ids = _tail_that_fits(tokenizer, lines_backward[0], room)
    return text, ids


def _fit_suffix(tokenizer: InfillTokenizer, lines: list[str], room: int) -> tuple[str, list[int]]:
    """The longest run of whole lines starting at the cursor whose ``enc_infilling`` fits."""
    total, taken = 0, 0
    for line in lines:
        cost = tokenizer.count_line(line, first=False)
        if total + cost > room:
            break
        total += cost
        taken += 1
    text = "".join(lines[:taken])
    ids = tokenizer.encode_infilling(text)
    while len(ids) > room and taken > 0:
        taken -= 1
        text = "".join(lines[:taken])
        ids = tokenizer.encode_infilling(text)
    if taken == 0 and lines:
        text, ids = _head_that_fits(tokenizer, lines[0], room)
    return text, ids
def _tail_that_fits(tokenizer: InfillTokenizer, line: str, room: int) -> tuple[str, list[int]]:
    """The cursor line alone is over budget: keep the longest tail of it that fits."""
    lo, hi = 0, len(line)  # smallest start index whose tail fits
    while lo < hi:
        mid = (lo + hi) // 2
        if len(tokenizer.encode(line[mid:])) <= room:
            hi = mid
        else:
            lo = mid + 1
    text = line[lo:]
    return text, tokenizer.encode(text)


def _head_that_fits(tokenizer: InfillTokenizer, line: str, room: int) -> tuple[str, list[int]]:
    lo, hi = 0, len(line)  # largest end index whose head fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(tokenizer.encode_infilling(line[:mid])) <= room:
            lo = mid
        else:
            hi = mid - 1
    text = line[:lo]
    return text, tokenizer.encode_infilling(text)
