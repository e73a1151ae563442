"""``eval``'s result cache and its keys: no model."""

from __future__ import annotations

from pathlib import Path

from code_llama_ls.eval.cache import ResultCache, model_key, repository_digest, run_key
from code_llama_ls.eval.tasks import SourceFile
from code_llama_ls.settings import Settings


def test_the_model_key_names_what_changes_outputs_only(tmp_path: Path):
    base = Settings(model=str(tmp_path), max_new_tokens=64)
    assert model_key(base) == model_key(base.model_copy(update={"completion_cache_entries": 0, "debounce_ms": 0,
                                                                "request_timeout_s": 5.0}))
    assert model_key(base) == model_key(base.model_copy(update={"context_enabled": False, "fim_mode": "spm"}))
    assert model_key(base) != model_key(base.model_copy(update={"max_new_tokens": 32}))
    assert model_key(base) != model_key(base.model_copy(update={"backend": "openai", "url": "http://127.0.0.1:1"}))
    relative = Settings(model=".", max_new_tokens=64)  # a local folder is named by its absolute path
    assert model_key(relative) == model_key(Settings(model=str(Path.cwd()), max_new_tokens=64))


def test_the_run_key_names_the_variant_and_the_repository():
    files = [SourceFile("a.py", "python", "x = 1\n")]
    changed = [SourceFile("a.py", "python", "x = 2\n")]
    assert run_key("m", "context/psm", repository_digest(files)) != run_key("m", "context/spm", repository_digest(files))
    assert run_key("m", "context/psm", repository_digest(files)) != run_key("m", "context/psm", repository_digest(changed))


def test_results_round_trip_and_an_unreadable_file_is_a_miss(tmp_path: Path):
    cache = ResultCache(tmp_path / "eval")
    assert cache.get("k", "t") is None
    cache.put("k", "t", {"text": "x"})
    assert cache.get("k", "t") == {"text": "x"}
    assert [p.name for p in (tmp_path / "eval").iterdir()] == ["k-t.json"]  # no partial file left
    (tmp_path / "eval" / "k-t.json").write_text("{not json")
    assert cache.get("k", "t") is None
