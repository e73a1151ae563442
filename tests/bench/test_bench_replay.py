"""bench replay --smoke runs end to end and prints the documented keys (no performance checks)."""

from __future__ import annotations

import json
import subprocess
import sys

KEYS = {"naive_model_s_per_shown", "ours_model_s_per_shown", "ratio", "p50_ms", "p95_ms", "cache_hit_rate",
        "wasted_share", "greedy_outputs_identical"}


def test_replay_smoke_prints_the_figures(trained_model):
    out = subprocess.run([sys.executable, "-m", "code_llama_ls", "bench", "replay", "--smoke", "--json"],
                         capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(result["models"]) == {"tiny", "mid"}
    for figures in result["models"].values():
        assert KEYS <= set(figures)
