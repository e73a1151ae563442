"""``code-llama-ls bench engines --smoke`` end to end on SmolLM2: the in-process llama.cpp engine,
llama-server and eager transformers measured on the same prompt ids, each engine in its own
process; the figures are there and agree with what the engines are (no timing targets here)."""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks import llama_cpp


def test_bench_engines_smoke_prints_every_figure(smollm2_gguf, llama_server_binary):
    done = subprocess.run([sys.executable, "-m", "code_llama_ls", "bench", "engines", "--smoke", "--json",
                           "--model", str(smollm2_gguf)], capture_output=True, text=True, timeout=600,
                          env=llama_cpp.python_server_env())
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    engines = result["engines"]
    assert set(engines) == {"transformers f32", "llama.cpp q4_1", "llama-server q4_1"}
    for name, figures in engines.items():
        assert figures["prefill_1024_ms"] > 0 and figures["decode_ms_per_token"] > 0, name
    # float32 transformers is the reference; Q4_1 weights change some argmax choices, not most.
    assert engines["transformers f32"]["argmax_agreement"] == 1.0
    assert 0.6 < engines["llama.cpp q4_1"]["argmax_agreement"] < 1.0
    assert engines["llama-server q4_1"]["argmax_agreement"] == engines["llama.cpp q4_1"]["argmax_agreement"]
    assert "llama.cpp q4_1 decode / llama-server's" in result["ratios"]
    assert set(result["load_average_1min"]) == {"start", "timings", "agreement"}
