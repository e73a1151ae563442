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
        # naive_evaluated_tokens is rounded (unsampled requests are priced at the mean): ±0.01
        assert figures["token_ratio"] == pytest.approx(naive / ours, abs=0.006)
        assert figures["ours_tokens_per_shown"] == round(ours / figures["shown_states"], 1)
        # Ours runs the prompt tokens its KV cache did not hold (none for a generation cancelled
        # before it started, queued behind another), plus at most the decode steps (drafted
        # tokens included) of each model call.
        new_prompt = figures["prompt_tokens"] - figures["reused_prompt_tokens"]
        fates = figures["ours_tokens_by_fate"].values()
        assert sum(f["prompt_tokens_run"] + f["decode_tokens"] for f in fates) == ours
        assert sum(f["prompt_tokens_run"] for f in fates) <= new_prompt
        assert ours <= new_prompt + figures["model_calls"] * MAX_NEW_TOKENS * 5
        # Naive runs every whole prompt from scratch: more per request than any prompt's decode.
        assert figures["naive_tokens_per_request_mean"] * figures["naive_requests"] == pytest.approx(naive, rel=0.01)
        for phase in ("ours", "naive"):
            load = figures["load_average_1min"][phase]
            assert 0 <= load["start"] <= load["max"] and load["end"] <= load["max"]


def test_token_accounting_on_a_short_replay(trained_model):
    """Ours' tokens are the server's evaluatedTokens summed over every generation it ran;
    naive's are each request's whole prompt plus its decode steps; the ratio is theirs."""
    import asyncio

    from benchmarks import replay

    trace = replay.build_trace(1, 26)
    trace.keystrokes = trace.keystrokes[:14]
    assert sum(k.shown for k in trace.keystrokes) >= 2
    ours = asyncio.run(replay.replay_ours(trained_model, trace, {}))
    generations = [e for e in ours["events"] if e["kind"] == "generation" and e["uri"] != replay.WARMUP_URI]
    assert generations
    assert any(e["uri"] == replay.WARMUP_URI for e in ours["events"])  # run, but not counted

    naive = replay.Naive(trained_model)
    runs: list = []
    original = naive.run

    def recording(text, offset):
        runs.append(original(text, offset))
        return runs[-1]

    naive.run = recording
    figures = replay.evaluate(trained_model, trace, ours, 1, naive=naive)
    runs = runs[1:]  # the warm-up is not counted

    ours_tokens = sum(g["evaluatedTokens"] for g in generations)
    assert ours_tokens > 0 and figures["ours_evaluated_tokens"] == ours_tokens
    assert figures["model_calls"] == len(generations)
    for g in generations:  # the prompt tokens its KV prefix did not hold, then at most one feed per token
        if g["evaluatedTokens"]:
            run = g["promptTokens"] - g["reusedTokens"]
            assert run + max(g["tokens"] - 1, 0) <= g["evaluatedTokens"] <= run + g["tokens"] * 5, g
    fates = figures["ours_tokens_by_fate"]
    assert sum(f["evaluated_tokens"] for f in fates.values()) == ours_tokens
    assert sum(f["calls"] for f in fates.values()) == len(generations)
    assert sum(f["prompt_tokens_run"] + f["decode_tokens"] for f in fates.values()) == ours_tokens

    # Naive: every keystroke measured (sample_every=1), each from scratch.
    assert len(runs) == len(trace.keystrokes) == figures["naive_measured_requests"]
    for r in runs:
        assert r.evaluated_tokens == r.prompt_tokens + r.decode_steps
        assert r.decode_steps == r.generated - (r.stop_reason == "max_tokens")
        assert r.prompt_tokens > 100  # the module's text before the cursor, no prefix reused
    naive_tokens = sum(r.prompt_tokens + r.decode_steps for r in runs)
    assert figures["naive_evaluated_tokens"] == naive_tokens
    assert figures["naive_measured"] == {"prompt_tokens": sum(r.prompt_tokens for r in runs),
                                         "decode_steps": sum(r.decode_steps for r in runs),
                                         "evaluated_tokens": naive_tokens}

    shown = sum(k.shown for k in trace.keystrokes)
    assert figures["shown_states"] == shown
    assert figures["naive_tokens_per_shown"] == round(naive_tokens / shown, 1)
    assert figures["ours_tokens_per_shown"] == round(ours_tokens / shown, 1)
    assert figures["token_ratio"] == round(naive_tokens / ours_tokens, 2)
    # Ours reuses the KV prefix across keystrokes: far fewer tokens than naive even on 14 keys.
    assert figures["token_ratio"] > 2


def test_load_sampler_reports_each_phase():
    import time

    from benchmarks import replay

    wall, cpu = time.perf_counter(), time.process_time()
    with replay.LoadSampler(interval_s=0.05) as sampler:
        end = time.perf_counter() + 0.4
        while time.perf_counter() < end:  # this thread busy (as much as a loaded machine lets it)
            pass
    own = (time.process_time() - cpu) / (time.perf_counter() - wall)
    load = sampler.figures()
    assert load["samples"] >= 4
    assert 0 <= load["start"] <= load["max"] and load["end"] <= load["max"]
    assert 0 <= load["mean"] <= load["max"]
    assert own > 0.05 and load["own_cores"] == pytest.approx(own, abs=0.1)
    assert load["others"] >= 0
    text = replay.format_load({"ours": load, "naive": load})
    assert text.startswith(f"ours {load['start']}→{load['end']}") and ", naive " in text
