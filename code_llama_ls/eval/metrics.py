"""Scores of one suggestion against its target, and their summary per task kind and variant.

What is compared is what lies between the prefix and the rest of the document in the accepted
file and in the original one: the suggestion's text against the target plus the characters after
the cursor that the suggestion replaces (``replace_end``; e.g. the auto-closed ``)`` of a
``call_args`` task). So an exact match is exactly "accepting it gives back the file".

A ``line`` task scores the suggestion's first line, as CrossCodeEval does: at an empty line's
start the editor shows a block, of which the line is the part under test.

- exact match: equal after stripping whitespace at line ends, and at both ends of the text;
- edit similarity: 1 − normalised Levenshtein distance of those stripped texts (CrossCodeEval's);
- identifier F1: of the multisets of identifiers in the two (the exact match where neither has any);
- parses: the accepted file has no ERROR or MISSING node, counted over the suggestions shown for
  tasks whose original file parsed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

from code_llama_ls.documents import Document

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ALL_KINDS = "all"


def percentile(values: list[float], q: float) -> float:
    """The value at quantile ``q`` (nearest rank; 0 for no values)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else 0.0


@dataclass(frozen=True)
class Outcome:
    """What the pipeline answered for one task and variant: what is cached."""

    text: str  # "" when there was no suggestion
    replace_end: int
    stop_reason: str
    tokens: int
    latency_ms: float
    no_suggestion: str | None = None  # post-processing's reason, when nothing was shown


@dataclass(frozen=True)
class Score:
    kind: str
    variant: str
    exact: bool
    similarity: float
    identifier_f1: float
    shown: bool
    parses: bool | None  # None: not counted (nothing shown, or the original file does not parse)
    latency_ms: float
    stop_reason: str


def normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.splitlines()).strip()


def exact_match(prediction: str, target: str) -> bool:
    return normalise(prediction) == normalise(target)


def edit_similarity(prediction: str, target: str) -> float:
    return Levenshtein.normalized_similarity(normalise(prediction), normalise(target))


def identifier_f1(prediction: str, target: str) -> float:
    """F1 of the identifiers' multisets; where neither has any (``1, 2``), the exact match."""
    predicted, expected = Counter(IDENTIFIER.findall(prediction)), Counter(IDENTIFIER.findall(target))
    if not predicted and not expected:
        return float(exact_match(prediction, target))
    common = sum((predicted & expected).values())
    if common == 0:
        return 0.0
    precision, recall = common / sum(predicted.values()), common / sum(expected.values())
    return 2 * precision * recall / (precision + recall)


def parses(text: str, language: str) -> bool:
    """No ERROR or MISSING node in the text's tree (``has_error`` covers both)."""
    tree = Document(f"file:///parse.{language}", text, 0, language_id=language).tree
    return tree is not None and not tree.root_node.has_error


def accepted(document: str, cursor: int, outcome: Outcome) -> str:
    """The document after accepting the suggestion at the cursor."""
    return document[:cursor] + outcome.text + document[cursor + outcome.replace_end:]


def score(kind: str, variant: str, document: str, cursor: int, target: str, language: str,
          original_parses: bool, outcome: Outcome) -> Score:
    """One task's scores (see the module docstring for what is compared)."""
    expected = target + document[cursor:cursor + outcome.replace_end]
    predicted = outcome.text.split("\n", 1)[0] if kind == "line" else outcome.text
    shown = outcome.no_suggestion is None and bool(outcome.text)
    return Score(kind, variant, exact_match(predicted, expected), edit_similarity(predicted, expected),
                 identifier_f1(predicted, expected), shown,
                 parses(accepted(document, cursor, outcome), language) if shown and original_parses else None,
                 outcome.latency_ms, outcome.stop_reason)


def summarise(scores: Iterable[Score]) -> dict[str, dict[str, dict]]:
    """Metrics by kind (and ``all``) and variant: means in [0, 1], latency percentiles in ms, and
    the share of each stop reason."""
    groups: dict[tuple[str, str], list[Score]] = {}
    for s in scores:
        for kind in (s.kind, ALL_KINDS):
            groups.setdefault((kind, s.variant), []).append(s)
    summary: dict[str, dict[str, dict]] = {}
    for (kind, variant), group in groups.items():
        summary.setdefault(kind, {})[variant] = _metrics(group)
    return summary


def _metrics(group: list[Score]) -> dict:
    n = len(group)
    checked = [s.parses for s in group if s.parses is not None]
    latencies = [s.latency_ms for s in group]
    reasons = Counter(s.stop_reason for s in group)
    return {
        "tasks": n,
        "exact_match": sum(s.exact for s in group) / n,
        "edit_similarity": sum(s.similarity for s in group) / n,
        "identifier_f1": sum(s.identifier_f1 for s in group) / n,
        "shown": sum(s.shown for s in group) / n,
        "parses": sum(checked) / len(checked) if checked else None,
        "parse_checked": len(checked),
        "latency_p50_ms": round(percentile(latencies, 0.5), 1),
        "latency_p95_ms": round(percentile(latencies, 0.95), 1),
        "stop_reasons": {reason: count / n for reason, count in sorted(reasons.items())},
    }
