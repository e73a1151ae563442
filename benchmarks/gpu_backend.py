"""Backend-alone timing on a GPU: a 7B-shaped random-weight Llama in bf16.

Prints one JSON object: prefill of 4,096 tokens, the same prompt after a one-token append with
the prefix KV cache reused (what typing costs with ``kvCacheMb``), and decode time per token at
that length (median of synchronised single steps). Random weights: timing only.

Runs where pygls and tree-sitter are absent (a GPU image with torch and transformers only):
``python benchmarks/gpu_backend.py``. It loads ``backends/prefix_cache.py`` by path so
that the package's ``__init__`` chain is not imported.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import transformers
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

PROMPT_TOKENS = 4096
DECODE_STEPS = 32


def _prefix_cache_module():
    path = Path(__file__).resolve().parents[1] / "code_llama_ls" / "backends" / "prefix_cache.py"
    spec = importlib.util.spec_from_file_location("prefix_cache", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["prefix_cache"] = module
    spec.loader.exec_module(module)
    return module


def _timed_ms(step) -> float:
    torch.cuda.synchronize()
    started = time.perf_counter()
    step()
    torch.cuda.synchronize()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    prefix_cache = _prefix_cache_module()
    config = LlamaConfig(vocab_size=32016, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=16384,
                         rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0})
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16).eval()
    cache_argument = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    ids = torch.randint(10, 32000, (1, PROMPT_TOKENS + 1 + DECODE_STEPS), device="cuda")
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "transformers": transformers.__version__}
    store = prefix_cache.PrefixCache(64 * 2**30, prefix_cache.bytes_per_token(config, 2))

    def forward(input_ids, cache):
        model(input_ids=input_ids, use_cache=True, logits_to_keep=1, **{cache_argument: cache})

    with torch.inference_mode():
        for _ in range(2):  # the first run warms up kernels and the allocator
            cache = DynamicCache(config=config)
            out["prefill_4096_ms"] = round(_timed_ms(lambda: forward(ids[:, :PROMPT_TOKENS], cache)), 1)
        store.put(ids[0, :PROMPT_TOKENS].tolist(), cache)
        reuse = []
        for _ in range(5):
            prompt = ids[0, :PROMPT_TOKENS + 1].tolist()

            def append_one():
                reused, keep = store.take(prompt)  # one token typed: reuse the cached prefix, feed the rest
                forward(ids[:, keep:PROMPT_TOKENS + 1], reused)
                store.put(prompt, reused)
                out["reused_tokens"] = keep

            reuse.append(_timed_ms(append_one))
        out["reuse_after_one_token_append_ms"] = round(statistics.median(reuse), 2)
        cache, _ = store.take(ids[0, :PROMPT_TOKENS + 1].tolist() + [0])
        steps = [_timed_ms(lambda n=n: forward(ids[:, n:n + 1], cache))
                 for n in range(PROMPT_TOKENS + 1, PROMPT_TOKENS + 1 + DECODE_STEPS)]
        out["decode_ms_per_token_at_4k"] = round(statistics.median(steps), 2)
    out["kv_bytes_per_token"] = prefix_cache.bytes_per_token(config, 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
