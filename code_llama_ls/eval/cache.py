"""Each result kept as one JSON file per (run key, task id), so that an interrupted run resumes
where it stopped and a repeated one makes no model call.

The run key names what changes a result besides the task (whose id names its content): the
model and tokenizer (a local folder by its absolute path), where the model runs (backend, URL,
device, dtype), the settings that change prompts or generation, the variant, and for a variant
with context the content of the repository's source files, which context is read from. It does
not name this package's code: after an upgrade, ``--no-cache`` gives fresh results.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from code_llama_ls.eval.tasks import SourceFile
from code_llama_ls.settings import Settings

CACHE_ENV = "CODE_LLAMA_LS_EVAL_CACHE"
VARIANT_SETTINGS = frozenset({"context_enabled", "fim_mode"})
NOT_OUTPUT_SETTINGS = frozenset({
    "instruct_model", "instruct_endpoint", "instruct_max_new_tokens", "api_key_env", "request_timeout_s",
    "max_retries", "ca_cert_path", "kv_cache_mb", "completion_cache_entries", "tokenizer_line_cache", "debounce_ms",
    "enabled_languages", "index_max_files", "context_cache_entries", "local_files_only", "shared_model_server",
    "shared_model_server_idle_s", "log_prompts", "engine_stats_events",
})
"""Settings that never change a completion's text: connection, cache bounds, logging."""


def default_folder() -> Path:
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "code-llama-ls" / "eval"


def digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:24]


def _local_or_name(name: str | None) -> str | None:
    """A local folder by its absolute path (the same model from another folder), else the hub id."""
    if name is None:
        return None
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def model_key(settings: Settings) -> str:
    """Names the model, where it runs and the settings that change outputs, but not the variant."""
    values = settings.model_dump(mode="json", exclude=set(NOT_OUTPUT_SETTINGS | VARIANT_SETTINGS))
    values["model"], values["tokenizer"] = _local_or_name(settings.model), _local_or_name(settings.tokenizer)
    return digest(values)


def repository_digest(files: Sequence[SourceFile]) -> str:
    return digest([[f.path, f.text] for f in files])


def run_key(model: str, variant: str, repository: str | None) -> str:
    """``repository``: the source files' digest for a variant that reads context, else None."""
    return digest({"model": model, "variant": variant, "repository": repository})


class ResultCache:
    """JSON objects by (key, name) in one folder; an unreadable file is a miss."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str, name: str) -> Path:
        return self.folder / f"{key}-{name}.json"

    def get(self, key: str, name: str) -> dict | None:
        try:
            value = json.loads(self._path(key, name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def put(self, key: str, name: str, value: dict) -> None:
        """Written whole or not at all (a run killed mid-write leaves no half file)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(key, name)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
        os.replace(partial, path)
