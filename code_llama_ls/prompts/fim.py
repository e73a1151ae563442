"""Completion prompts inside a token budget: fill-in-the-middle for Code Llama, left to right
for models that do not infill.

Layout (Meta's ``infilling_prompt_tokens``):

- PSM: ``[BOS, ▁<PRE>] + enc(prefix) + [▁<SUF>] + enc_infilling(suffix) + [▁<MID>]``
- SPM: ``[BOS, ▁<PRE>, ▁<SUF>] + enc_infilling(suffix) + [▁<MID>] + enc(prefix)``
- L2R (left to right): the tokenizer's own start (BOS where it adds one) ``+ enc(prefix)``; the
  text after the cursor is not in the prompt, and the whole budget goes to the prefix side (the
  suggestion is still shaped against it: ``completion/shape.py``).

Budget: ``len(ids) + max_new_tokens <= max_context_tokens``. Prefix and suffix share what is
left by ``prefix_ratio``; a side that needs less than its share passes the rest to the other.
Cuts fall on line boundaries (the prefix loses whole lines at its start, the suffix at its end).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from code_llama_ls.context.base import ContextBlock
from code_llama_ls.prompts.tokenization import ModelTokenizer

FimMode = Literal["psm", "spm"]
PromptMode = Literal["psm", "spm", "l2r"]
SPECIAL_TOKENS_PER_PROMPT = 4  # BOS, <PRE>, <SUF>, <MID>
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class BudgetError(ValueError):
    """The settings leave no room for a prompt (max_new_tokens too close to the context)."""


@dataclass(frozen=True)
class Budget:
    max_context_tokens: int
    max_new_tokens: int
    prefix_ratio: float = 0.75

    def text_tokens(self, special_tokens: int) -> int:
        """What is left for text after the completion and a prompt's ``special_tokens``."""
        available = self.max_context_tokens - self.max_new_tokens - special_tokens
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
    kind: str = "snippet"


@dataclass(frozen=True)
class InfillPrompt:
    ids: list[int]
    mode: PromptMode
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
                {"path": s.path, "kind": s.kind, "tokens": s.tokens, "text": s.text} for s in self.snippets
            ],
        }


    @property
    def prefix_end(self) -> int:
        """The index of the prefix's last token in ``ids`` (what token healing backs off)."""
        return 2 + self.prefix_tokens - 1 if self.mode == "psm" else len(self.ids) - 1


def assemble(tokenizer: ModelTokenizer, prefix: str, suffix: str, mode: PromptMode) -> list[int]:
    """The exact prompt ids for these texts, with no budgeting."""
    return _assemble(tokenizer, tokenizer.encode(prefix), tokenizer.encode_infilling(suffix), mode)


def special_tokens(tokenizer: ModelTokenizer, mode: PromptMode) -> int:
    return len(tokenizer.prompt_start()) if mode == "l2r" else SPECIAL_TOKENS_PER_PROMPT


def _assemble(tokenizer: ModelTokenizer, prefix_ids: list[int], suffix_ids: list[int], mode: PromptMode) -> list[int]:
    if mode == "l2r":
        return [*tokenizer.prompt_start(), *prefix_ids]
    tokenizer.require_infilling()
    s = tokenizer.special
    if mode == "spm":
        return [s.bos, s.prefix, s.suffix, *suffix_ids, s.middle, *prefix_ids]
    return [s.bos, s.prefix, *prefix_ids, s.suffix, *suffix_ids, s.middle]


CURSOR_LINE_QUANTUM = 32
"""The cursor line is budgeted in steps of this many tokens, so that typing within a line does
not move the prefix cut or the packed context on every keystroke (a cached prompt prefix stays
reusable)."""
CONTEXT_SHARE = 0.4
"""At most this share of the prompt's text tokens goes to context from other places (taken from
the prefix side) while the local prefix needs it; unused shares flow to the other parts."""


@dataclass(frozen=True)
class InfillParts:
    """The texts behind an infilling prompt, for servers that build the prompt themselves
    (llama.cpp's ``/infill``): the local prefix and suffix, and context snippets as (path, text)."""

    prefix: str
    suffix: str
    extra: tuple[tuple[str, str], ...] = ()


def render_block(block: ContextBlock, comment_prefix: str) -> list[str]:
    """The block as comment lines headed with its path, each line ending with a newline."""
    lines = [f"{comment_prefix} Path: {block.path}\n"]
    for line in block.body.rstrip("\n").split("\n"):
        lines.append(f"{comment_prefix} {line}\n" if line.strip() else f"{comment_prefix}\n")
    return lines


def build_infill_prompt(
    tokenizer: ModelTokenizer,
    before: str,
    after: str,
    budget: Budget,
    mode: PromptMode = "psm",
    context: Sequence[ContextBlock] = (),
    comment_prefix: str = "#",
) -> InfillPrompt:
    """Cut ``before``/``after`` (the document around the cursor) to the budget, pack context
    blocks in front of the local prefix, and encode.

    Split of the text tokens: the suffix reserves ``1 - prefix_ratio``; the prefix side
    ``prefix_ratio``, of which context may take up to ``CONTEXT_SHARE`` of the whole while the
    local prefix keeps the rest. A part that needs less than its share passes it on. Left to
    right (``l2r``), ``after`` is left out and the suffix's share goes to the prefix side.
    """
    if mode == "l2r":
        after = ""
    available = budget.text_tokens(special_tokens(tokenizer, mode))
    prefix_share = available if mode == "l2r" else int(available * budget.prefix_ratio)
    suffix_share = available - prefix_share

    backward = _nearest_lines(tokenizer, _lines_backward(before), available, prefix=True)[0]
    cursor_part = backward[0] if backward and before[-1:] not in ("\n", "\r") else ""
    above = backward[1:] if cursor_part else backward
    reserve = (tokenizer.count_line(cursor_part, first=True) // CURSOR_LINE_QUANTUM + 1) * CURSOR_LINE_QUANTUM
    above_need = _approx_tokens(tokenizer, above)
    suffix_lines, suffix_need = _nearest_lines(tokenizer, _lines_forward(after), available, prefix=False)

    rendered = [render_block(block, comment_prefix) for block in context]
    block_tokens = [_approx_tokens(tokenizer, lines) for lines in rendered]
    context_need = sum(block_tokens)
    context_cap = min(int(available * CONTEXT_SHARE), prefix_share) if context else 0

    suffix_room = max(suffix_share, available - reserve - above_need - context_need)
    suffix, suffix_ids = _fit_suffix(tokenizer, suffix_lines, suffix_room)
    left = available - len(suffix_ids)

    local_room = max(left - min(context_need, context_cap), 0)
    kept_above, above_tokens = _fit_above(tokenizer, above, local_room - reserve)
    local_lines = list(reversed(kept_above))
    if cursor_part:
        local_lines.append(cursor_part)

    context_room = left - above_tokens - reserve
    chosen = _pack(rendered, block_tokens, context, context_room)
    unused = context_room - sum(block_tokens[i] for i in chosen)
    if unused > 0 and len(suffix) < len(after):  # the prefix side left room: the suffix may grow
        suffix, suffix_ids = _fit_suffix(tokenizer, suffix_lines, len(suffix_ids) + unused)
        left = available - len(suffix_ids)

    while True:
        prefix_lines = [line for index in chosen for line in rendered[index]] + local_lines
        prefix_ids = tokenizer.encode_lines(prefix_lines, leading_space=True)
        if len(prefix_ids) <= left:
            break
        # Counts did not add up exactly (a vocabulary whose pieces cross line breaks): drop
        # context first, then the farthest local line.
        if chosen:
            chosen.pop()
        elif len(local_lines) > 1:
            local_lines.pop(0)
        else:  # the cursor line alone is over budget: keep its longest tail that fits
            tail = _tail_that_fits(tokenizer, local_lines[0], left)[0] if local_lines else ""
            local_lines = [tail] if tail else []

    snippets = [
        Snippet(path=context[i].path, text="".join(rendered[i]), tokens=block_tokens[i], kind=context[i].kind)
        for i in chosen
    ]
    return InfillPrompt(
        ids=_assemble(tokenizer, prefix_ids, suffix_ids, mode),
        mode=mode,
        prefix="".join(prefix_lines),
        suffix=suffix,
        prefix_tokens=len(prefix_ids),
        suffix_tokens=len(suffix_ids),
        snippets=snippets,
    )


def _pack(rendered: list[list[str]], tokens: list[int], blocks: Sequence[ContextBlock], room: int) -> list[int]:
    """Indices of the blocks that fit, in priority order (the caller's order), stable for a
    given room. The text puts them in that order; definitions come first by convention."""
    chosen: list[int] = []
    used = 0
    for index, cost in enumerate(tokens):
        if used + cost <= room:
            chosen.append(index)
            used += cost
    return chosen


def _fit_above(tokenizer: ModelTokenizer, above: list[str], room: int) -> tuple[list[str], int]:
    """Whole lines above the cursor line, nearest first, that fit ``room`` (priced as inner lines
    plus one for the leading ▁ of whichever line ends up first)."""
    kept: list[str] = []
    total = 1
    for line in above:
        cost = tokenizer.count_line(line, first=False)
        if total + cost > room:
            break
        kept.append(line)
        total += cost
    return kept, (total if kept else 0)


def _approx_tokens(tokenizer: ModelTokenizer, lines: list[str]) -> int:
    return sum(tokenizer.count_line(line, first=False) for line in lines) + (1 if lines else 0)


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
    tokenizer: ModelTokenizer, lines: Iterator[str], cap: int, *, prefix: bool
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


def _fit_suffix(tokenizer: ModelTokenizer, lines: list[str], room: int) -> tuple[str, list[int]]:
    """The longest run of whole lines starting at the cursor whose ``enc_infilling`` fits."""
    total, taken = 0, 0
    for line in lines:
        cost = tokenizer.count_line(line, first=False)
        if total + cost > room:
            break
        total += cost
        taken += 1
    ids = tokenizer.encode_lines(lines[:taken], leading_space=False)
    while len(ids) > room and taken > 0:
        taken -= 1
        ids = tokenizer.encode_lines(lines[:taken], leading_space=False)
    if taken == 0 and lines:
        return _head_that_fits(tokenizer, lines[0], room)
    return "".join(lines[:taken]), ids


def _tail_that_fits(tokenizer: ModelTokenizer, line: str, room: int) -> tuple[str, list[int]]:
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


def _head_that_fits(tokenizer: ModelTokenizer, line: str, room: int) -> tuple[str, list[int]]:
    lo, hi = 0, len(line)  # largest end index whose head fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(tokenizer.encode_infilling(line[:mid])) <= room:
            lo = mid
        else:
            hi = mid - 1
    text = line[:lo]
    return text, tokenizer.encode_infilling(text)
