"""``bench soak --minutes 1``: no errors, every cache within its bound at every sample, and every
cache filled to at least half its bound (a soak whose caches never filled would prove nothing)."""

from __future__ import annotations

import json

from benchmarks import soak
from code_llama_ls.cli.main import build_parser

CACHES = {"documents", "completion", "kv", "tokenizerLines", "indexFiles", "indexProbes", "contextDefinitions",
          "outlines", "snippetRegions", "ignoreFiles", "pythonImports", "pythonSymbols", "pythonResolutions",
          "engineEvents"}


def test_one_minute_soak_has_no_errors_and_fills_every_cache_within_its_bound(trained_model, capsys):
    rc = soak.main(build_parser().parse_args(["bench", "soak", "--minutes", "1", "--json"]))
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    [minute] = result["minutes"]
    assert result["verdict"]["errors"] == 0, result["errors"]
    assert minute["served"] >= 10, minute
    caches = minute["caches"]
    assert set(caches) == CACHES
    assert caches["kv"]["bound"] == soak.SOAK_BOUNDS["kvCacheMb"] * 2**20
    assert caches["completion"]["bound"] == soak.SOAK_BOUNDS["completionCacheEntries"]
    assert caches["indexFiles"]["bound"] == soak.SOAK_BOUNDS["indexMaxFiles"]
    assert caches["tokenizerLines"]["bound"] == soak.SOAK_BOUNDS["tokenizerLineCache"]
    assert minute["within_bounds"], caches
    unfilled = {name: c for name, c in caches.items() if c["max"] < 0.5 * c["bound"]}
    assert not unfilled, unfilled
    assert rc == 0
