"""``code-llama-ls bench shape``: the editor states it cuts are what it says, and it counts right.

No target assertions: the full run reports the figures (README, the issue's closing note).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from benchmarks import shape, shape_states, tiny_model
from benchmarks.shape_states import State, states_in
from code_llama_ls.cli.main import main

PYTHON = '''import os


def walk(top, names):
    found = []
    for name in names:
        path = os.path.join(top, name)
        if os.path.isdir(path):
            found.append(path)
        else:
            found.extend(walk(path, []))
    return sorted(found, key=len)


class Box:
    def __init__(self, items):
        self.items = list(items)
        self.size = len(self.items)

    def first(self):
        return self.items[0] if self.items else None
'''

JAVASCRIPT = '''const path = require('path');

function walk(top, names) {
  const found = [];
  for (const name of names) {
    const full = path.join(top, name);
    if (name.endsWith('.js')) {
      found.push(full);
    } else {
      found.push(...walk(full, []));
    }
  }
  return found.sort((a, b) => a.length - b.length);
}

module.exports = { walk };
'''

needs_tokenizer = pytest.mark.skipif(
    tiny_model.fixture_tokenizer_dir() is None,
    reason="the Code Llama tokenizer replica (shared/fixtures/codellama-tokenizer) is not on this machine")


def states(text: str, language: str, kind: int) -> list[State]:
    return list(states_in("sample", text, language, kind, random.Random(5)))


@pytest.mark.parametrize("language, text", [("python", PYTHON), ("javascript", JAVASCRIPT)])
def test_each_kind_cuts_the_state_it_names(language: str, text: str):
    for kind in shape_states.KINDS:
        cut = states(text, language, kind)
        assert cut, f"kind {kind}: no state in the sample"
        for state in cut:
            assert state.prefix + state.gold + state.suffix == text and state.gold.strip()
            line_before = state.prefix.rsplit("\n", 1)[-1]
            rest_of_line = state.suffix.split("\n", 1)[0]
            if kind == 1:  # the rest of a block from the start of one of its lines
                assert not line_before.strip() and line_before
            elif kind == 2:  # a block's body after its header line
                assert line_before.rstrip().endswith(":" if language == "python" else "{")
                assert state.gold.startswith("\n")
            elif kind == 3:  # strictly between an opener and its closer
                assert shape_states.PAIRS[state.prefix[-1]] == state.suffix[0]
            elif kind == 4:  # the rest of a line with only closers after it
                assert rest_of_line.strip() and set(rest_of_line) <= shape_states.STATE_CLOSERS | {";", ":", ","}
            else:  # a span inside a line with other code after it
                assert set(rest_of_line.strip()) - shape_states.STATE_CLOSERS - {";", ":", ","}


@needs_tokenizer
def test_raw_texts_stand_in_for_the_model_as_described():
    tokens = shape.TokenCounter()
    rng = random.Random(1)
    for kind in shape_states.KINDS:
        for state in states(PYTHON, "python", kind):
            raws = shape.raw_texts(state, tokens, rng)
            assert raws["a"].text == state.gold and not raws["a"].truncated
            assert raws["b"].text.startswith(state.gold) and tokens.count(raws["b"].text) <= shape.RAW_TOKENS
            assert raws["b"].text == (state.gold + state.suffix)[:len(raws["b"].text)]
            assert raws["c"].text.startswith(state.gold) and raws["c"].truncated
            assert len(raws["d"].text) <= len(state.gold) and raws["d"].text in state.original


@needs_tokenizer
def test_measure_counts_shown_and_accepted_documents():
    tokens = shape.TokenCounter()
    cut = [state for kind in shape_states.KINDS for state in states(PYTHON, "python", kind)]
    untouched = shape.measure(cut, lambda prefix, suffix, language, raw, truncated=False: (raw, 0), tokens, 1)
    for row in untouched.values():
        assert row["a"] == row["a_raw"] == 1.0 and row["b"] == row["b_raw"] and row["c"] == row["c_raw"]
        assert row["d_shown"] == 1.0 and row["d_adds_errors"] == row["d_raw_adds_errors"]
    nothing = shape.measure(cut, lambda prefix, suffix, language, raw, truncated=False: None, tokens, 1)
    for row in nothing.values():
        assert row["a"] == 0.0 and row["d_shown"] == 0.0 and row["d_adds_errors"] == 0.0


@needs_tokenizer
def test_bench_shape_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path):
    """The command end to end on a few states per kind (the JavaScript sources are the test's,
    so it needs no ``npm ci``)."""
    sample = tmp_path / "walk.js"
    sample.write_text(JAVASCRIPT)
    monkeypatch.setattr(shape, "javascript_sources", lambda seed: [sample])
    monkeypatch.setattr(shape, "PER_KIND", {"python": 3, "javascript": 2})
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "shape", "--json", "--seeds", "1"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert exit_info.value.code == (0 if result["seeds"]["1"]["meets_targets"] else 1)
    assert result["targets"] == shape.TARGETS
    kinds = result["seeds"]["1"]["kinds"]
    assert sorted(kinds) == [str(kind) for kind in shape_states.KINDS]
    for row in kinds.values():
        assert row["states"] == 5
        for key in ("a", "a_raw", "b", "b_raw", "c", "c_raw", "d_shown", "d_adds_errors", "d_raw_adds_errors"):
            assert 0.0 <= row[key] <= 1.0, key
