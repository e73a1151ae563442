"""Turning raw model output into a suggestion worth showing.

Each filter is a small pure function; ``postprocess`` chains them. A suggestion that comes out
empty is dropped rather than shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from code_llama_ls.context.syntax import Scope

SENTINEL_TEXTS = ("▁<EOT>", "<EOT>", "▁<PRE>", "<PRE>", "▁<SUF>", "<SUF>", "▁<MID>", "<MID>", "</s>", "<s>")


@dataclass(frozen=True)
class CursorContext:
    line_suffix: str  # the rest of the cursor's line, after the cursor
    scope: Scope


def cut_at_sentinel(text: str) -> str:
    """Never show sentinel text: everything from the first one on is dropped."""
    cut = min((i for i in (text.find(s) for s in SENTINEL_TEXTS) if i != -1), default=-1)
    return text if cut == -1 else text[:cut].rstrip(" ")


def limit_to_scope(text: str, scope: Scope) -> str:
    if scope == "line":
        return text.split("\n", 1)[0].rstrip("\r")
    return text.rstrip()


def drop_echoed_line_suffix(text: str, line_suffix: str) -> str:
    """The model repeated what already follows the cursor on this line: keep only what is new."""
    rest = line_suffix.strip()
    if rest and text.rstrip().endswith(rest):
        return text.rstrip()[: -len(rest)]
    return text


def postprocess(raw: str, cursor: CursorContext) -> str | None:
    text = cut_at_sentinel(raw)
    text = limit_to_scope(text, cursor.scope)
    text = drop_echoed_line_suffix(text, cursor.line_suffix)
    return text if text.strip() else None
