"""Smoke test of ``code-llama-ls bench context``: it runs and reports what it promises.

No performance assertions: figures depend on the machine; the full run reports them.
"""

from __future__ import annotations

import json

import pytest

from benchmarks import context as bench_context
from code_llama_ls.cli.main import main


def test_tasks_are_cross_file_with_cursor_after_the_bracket() -> None:
    tasks, stdlib = bench_context.cut_tasks(12, seed=bench_context.DEFAULT_SEED)
    assert len(tasks) == 12
    for task in tasks:
        text = stdlib.source(task.path)
        assert text[task.offset - 1] == "("
        assert text[: task.offset - 1].endswith(task.call)
        assert task.gold_path != task.path
        assert task.gold_line.lstrip().startswith(("def ", "async def ", "class "))
        assert stdlib.source(task.gold_path).splitlines()[task.gold_lineno - 1].rstrip() == task.gold_line
    assert tasks == bench_context.cut_tasks(12, seed=bench_context.DEFAULT_SEED)[0]  # fixed seed


def test_bench_context_smoke_json(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "context", "--smoke", "--json"])
    assert exit_info.value.code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("tasks", "recall", "recall_infile", "recall_bm25", "overhead_p50_ms", "overhead_p95_ms"):
        assert key in result, key
    assert result["tasks"] == bench_context.SMOKE_TASKS
    for key in ("recall", "recall_infile", "recall_bm25"):
        assert 0.0 <= result[key] <= 1.0
    assert 0.0 <= result["overhead_p50_ms"] <= result["overhead_p95_ms"]
