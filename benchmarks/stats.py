"""Percentiles as the benchmarks report them."""

from __future__ import annotations

from code_llama_ls.eval.metrics import percentile


def p50_p95(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 0.5), 3), "p95_ms": round(percentile(values, 0.95), 3)}
