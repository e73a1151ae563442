"""bench replay --smoke runs end to end and prints the documented keys (no performance checks)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

KEYS = {"naive_model_s_per_shown", "ours_model_s_per_shown", "ratio", "p50_ms", "p95_ms", "cache_hit_rate",
        "wasted_share", "greedy_outputs_identical", "naive_tokens_per_shown", "ours_tokens_per_shown", "token_ratio"}
MAX_NEW_TOKENS = 48  # bench replay's


def test_replay_smoke_prints_the_figures(trained_model):
    out = subprocess.run([sys.executable, "-m", "code_llama_ls", "bench", "replay", "--smoke", "--json"],
                         capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(result["models"]) == {"tiny", "mid"}
    for figures in result["models"].values():
        assert KEYS <= set(figures)
        ours, naive = figures["ours_evaluated_tokens"], figures["naive_evaluated_tokens"]
        assert figures["token_ratio"] == round(naive / ours, 2)
        assert figures["ours_tokens_per_shown"] == round(ours / figures["shown_states"], 1)
        # Ours runs the prompt tokens its KV cache did not hold, plus at most the decode steps
        # (drafted tokens included) of each model call.
        new_prompt = figures["prompt_tokens"] - figures["reused_prompt_tokens"]
        assert new_prompt <= ours <= new_prompt + figures["model_calls"] * MAX_NEW_TOKENS * 5
        # Naive runs every whole prompt from scratch: more per request than any prompt's decode.
        assert figures["naive_tokens_per_request_mean"] * figures["naive_requests"] == pytest.approx(naive, rel=0.01)
        for phase in ("ours", "naive"):
            load = figures["load_average_1min"][phase]
            assert 0 <= load["start"] <= load["max"] and load["end"] <= load["max"]
