"""``eval`` metrics on hand-made pairs: no model."""

from __future__ import annotations

import pytest

from code_llama_ls.eval.metrics import (ALL_KINDS, Outcome, accepted, edit_similarity, exact_match, identifier_f1,
                                        parses, score, summarise)


def test_exact_match_ignores_whitespace_at_line_ends_and_around_the_text():
    assert exact_match("\n    x = 1   \n    y = 2\t\n\n", "\n    x = 1\n    y = 2")
    assert exact_match("  a  ", "a")
    assert not exact_match("x = 1", "x  = 1")  # inside a line, spaces count
    assert not exact_match("\n    x\n  y", "\n    x\n    y")  # and indentation does


def test_edit_similarity_is_one_minus_normalised_levenshtein():
    assert edit_similarity("abc", "abc") == 1.0
    assert edit_similarity("abcd", "abce") == pytest.approx(0.75)  # 1 edit over 4 characters
    assert edit_similarity("", "abcd") == 0.0
    assert edit_similarity("ab  \n", "ab") == 1.0  # on the stripped texts


def test_identifier_f1_on_multisets():
    assert identifier_f1("foo(bar, baz)", "foo(bar, baz)") == 1.0
    # predicted {f, x, x}, expected {f, x, y}: 2 in common → precision 2/3, recall 2/3
    assert identifier_f1("f(x, x)", "f(x, y)") == pytest.approx(2 / 3)
    assert identifier_f1("a", "b") == 0.0
    assert identifier_f1("", "value") == 0.0
    assert identifier_f1("1, 2", "1, 2") == 1.0 and identifier_f1("3", "1, 2") == 0.0  # no identifiers: exact match


def test_parses_counts_error_and_missing_nodes():
    assert parses("def f(x):\n    return x\n", "python")
    assert not parses("def f(x:\n    return x\n", "python")
    assert not parses("x = (1 + 2\n", "python")


def test_score_compares_the_accepted_file_with_the_original():
    document = "y = f()\n"  # the target "a, b" removed at offset 6; the auto-closed ")" stays
    replaced = Outcome("a, b)", 1, "eot", 3, 10.0)  # the suggestion replaces the ")"
    assert accepted(document, 6, replaced) == "y = f(a, b)\n"
    s = score("call_args", "v", document, 6, "a, b", "python", True, replaced)
    assert s.exact and s.similarity == 1.0 and s.identifier_f1 == 1.0 and s.shown and s.parses
    broken = score("call_args", "v", document, 6, "a, b", "python", True, Outcome("a, b))", 1, "eot", 3, 10.0))
    assert not broken.exact and broken.parses is False


def test_a_line_task_scores_the_first_line_and_no_suggestion_scores_zero():
    document = "def f(x):\n    \n"
    two_lines = Outcome("return x\n    pass", 0, "eot", 5, 1.0)
    assert score("line", "v", document, 14, "return x", "python", True, two_lines).exact
    nothing = score("line", "v", document, 14, "return x", "python", True,
                    Outcome("", 0, "eot", 0, 1.0, "empty"))
    assert (nothing.exact, nothing.similarity, nothing.identifier_f1, nothing.shown, nothing.parses) == \
        (False, 0.0, 0.0, False, None)
    unparsed_original = score("line", "v", document, 14, "return x", "python", False, two_lines)
    assert unparsed_original.parses is None  # counted only where the original file parsed


def test_summarise_by_kind_and_variant_with_all():
    outcome = Outcome("x", 0, "eot", 1, 10.0)
    scores = [score("line", "a", "\n", 0, "x", "python", True, outcome),
              score("line", "a", "\n", 0, "y", "python", True, Outcome("z", 0, "max_tokens", 1, 30.0)),
              score("block", "a", "\n", 0, "x", "python", True, outcome),
              score("line", "b", "\n", 0, "x", "python", True, Outcome("", 0, "eot", 0, 20.0, "empty"))]
    summary = summarise(scores)
    assert set(summary) == {"line", "block", ALL_KINDS}
    line_a = summary["line"]["a"]
    assert line_a["tasks"] == 2 and line_a["exact_match"] == 0.5 and line_a["shown"] == 1.0
    assert line_a["stop_reasons"] == {"eot": 0.5, "max_tokens": 0.5}
    assert line_a["latency_p50_ms"] in (10.0, 30.0) and line_a["latency_p95_ms"] == 30.0
    assert summary[ALL_KINDS]["a"]["tasks"] == 3 and summary[ALL_KINDS]["b"]["tasks"] == 1
    assert summary["line"]["b"]["parses"] is None and summary["line"]["b"]["parse_checked"] == 0
