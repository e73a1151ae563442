"""``code-llama-ls bench overhead``: server-side time per request, stage by stage.

A 10,000-line Python file (standard-library source, deterministic) is edited one keystroke at a
time (the document update includes the incremental tree-sitter reparse) at cursors spread over the file; after each keystroke a completion runs through the same
engine the server uses, with the tiny random-weight model. Printed: p50/p95 of document update,
prompt build, generation and post-processing, and their total.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sysconfig
import time
from pathlib import Path

from benchmarks import tiny_model
from benchmarks.stats import p50_p95
from code_llama_ls.completion.engine import CompletionEngine
from code_llama_ls.documents import Document
from code_llama_ls.runtime.manager import RuntimeEvents, RuntimeManager
from code_llama_ls.settings import Settings

STDLIB_FILES = ("json/decoder.py", "json/encoder.py", "argparse.py", "textwrap.py", "difflib.py",
                "pathlib.py", "inspect.py", "typing.py", "dataclasses.py", "functools.py")


def python_file(lines: int) -> str:
    """``lines`` lines of real Python, stitched from standard-library modules."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    source: list[str] = []
    while len(source) < lines:
        for name in STDLIB_FILES:
            path = stdlib / name
            if path.is_file():
                source.extend(path.read_text(encoding="utf-8").splitlines())
        if not source:
            raise SystemExit("no standard-library sources found to build the benchmark file")
    return "\n".join(source[:lines]) + "\n"


async def run(requests: int, lines: int, max_new_tokens: int) -> dict:
    model = tiny_model.random_model()
    settings = Settings(model=str(model), local_files_only=True, max_new_tokens=max_new_tokens,
                        max_context_tokens=4096, device="cpu")
    quiet = RuntimeEvents(lambda *a: None, lambda *a: None, lambda *a: None, lambda *a: None, print)
    runtime = RuntimeManager(lambda: settings, quiet)
    records: list[dict] = []
    engine = CompletionEngine(runtime.get, lambda: settings, records.append)
    await runtime.get()

    document = Document("file:///bench/big.py", python_file(lines), 1, "python")
    rng = random.Random(7)
    stages: dict[str, list[float]] = {"document_update": [], "prompt": [], "generation": [], "postprocess": []}
    totals: list[float] = []
    for i in range(requests):
        line = rng.randrange(lines // 10, lines - 10)
        start, end = document.line_range(line)
        position = document.position_at(end)
        began = time.perf_counter()
        document.apply_change("x", position, position)  # one keystroke at the end of a line
        document.version += 1
        document.tree  # the incremental reparse counts as part of the update
        updated = time.perf_counter()
        await engine.complete(document, end + 1)
        timings = records[-1]["timingsMs"]
        stages["document_update"].append((updated - began) * 1000)
        for stage in ("prompt", "generation", "postprocess"):
            stages[stage].append(timings[stage])
        totals.append(stages["document_update"][-1] + sum(timings.values()))
    await runtime.close()
    result = {name: p50_p95(v) for name, v in stages.items()}
    result["total"] = p50_p95(totals)
    result["server_overhead_excluding_generation"] = p50_p95([t - g for t, g in zip(totals, stages["generation"])])
    result["requests"], result["lines"], result["max_new_tokens"] = requests, lines, max_new_tokens
    result["prompt_tokens_p50"] = statistics.median(r["promptTokens"] for r in records)
    return result


def main(args: argparse.Namespace) -> int:
    result = asyncio.run(run(args.requests, args.lines, args.max_new_tokens))
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['requests']} requests, {result['lines']}-line file, "
          f"~{result['prompt_tokens_p50']:.0f} prompt tokens, maxNewTokens {result['max_new_tokens']}, tiny model")
    print(f"{'stage':<40}{'p50 ms':>10}{'p95 ms':>10}")
    for name in ("document_update", "prompt", "generation", "postprocess", "total",
                 "server_overhead_excluding_generation"):
        print(f"{name:<40}{result[name]['p50_ms']:>10.2f}{result[name]['p95_ms']:>10.2f}")
    return 0
