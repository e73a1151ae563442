"""``code-llama-ls bench load`` smoke test: a small team against each inference server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def bench_load(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "code_llama_ls", "bench", "load", *args],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("server", ["model-server", "llama-server"])
def test_a_small_team_gets_answers_and_figures(server, request):
    if server == "llama-server":
        request.getfixturevalue("llama_server_binary")  # built (or skipped with the reason) first
    done = bench_load("--server", server, "--clients", "2", "--requests", "3", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["server"] == server and result["clients"] == 2
    assert result["requests"] == result["completed"] == 6 and result["errors"] == 0
    assert 0 < result["p50_ms"] <= result["p95_ms"]
    assert result["throughput_rps"] > 0


def test_bounds_are_enforced():
    done = bench_load("--clients", "17")
    assert done.returncode == 2
    assert "--clients 1-16" in done.stderr
