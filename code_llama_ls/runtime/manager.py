"""Loading the tokenizer and backend that the current settings name, once, off the event loop.

A failed load is reported once (status ``error`` and one message; the log has it at info level
only) and remembered: later requests get empty results at once instead of retrying and
re-reporting, until the model settings change. A hub that does not answer is noticed before the
load (``code_llama_ls.runtime.hub``). A remote backend's server may come up later: a request made
``REMOTE_RETRY_S`` after its failed connection tries again (and a failure with the same message is
not re-shown).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from code_llama_ls.backends import create_backend
from code_llama_ls.backends.base import Backend, BackendError
from code_llama_ls.runtime.hub import load_failure, load_settings
from code_llama_ls.model_files import ModelFileError, model_config
from code_llama_ls.prompts import capabilities
from code_llama_ls.prompts.capabilities import Capabilities
from code_llama_ls.prompts.tokenization import ModelTokenizer, TokenizerError
from code_llama_ls.settings import Settings

log = logging.getLogger(__name__)
REMOTE_RETRY_S = 2.0
"""A remote backend whose server could not be reached is tried again on a request this long after."""


def runtime_key(settings: Settings) -> tuple:
    """What the loaded runtime depends on (the settings fields marked to reload it)."""
    return settings.runtime_key()


def model_config_of(settings: Settings) -> dict:
    """The config capability detection reads: the model's own, or for a remote backend the
    tokenizer folder's (the server's model is only a name here)."""
    source = settings.tokenizer_name if settings.remote else settings.model
    return model_config(source, local_files_only=settings.local_files_only)


def detect_capabilities(settings: Settings, tokenizer: ModelTokenizer) -> capabilities.Capabilities:
    """What the model can do, from its name, its config and its tokenizer."""
    return capabilities.detect(settings.model, model_config_of(settings), tokenizer, settings.infilling)


@dataclass
class Runtime:
    """A loaded tokenizer and backend for one group of model settings, and what the model can do."""

    tokenizer: ModelTokenizer
    backend: Backend
    capabilities: Capabilities = None  # type: ignore[assignment]  # None: what the tokenizer shows

    def __post_init__(self) -> None:
        if self.capabilities is None:
            self.capabilities = capabilities.detect("", {}, self.tokenizer)


@dataclass
class RuntimeEvents:
    """How loading is shown to the user; the server wires these to LSP notifications."""

    status: Callable[[str, str], None]  # state, message
    progress_begin: Callable[[str], None]
    progress_report: Callable[[str, int | None], None]
    progress_end: Callable[[str], None]
    error: Callable[[str], None]  # shown once per failed configuration


class RuntimeManager:
    def __init__(self, settings: Callable[[], Settings], events: RuntimeEvents) -> None:
        self._settings = settings
        self._events = events
        self._key: tuple | None = None
        self._task: asyncio.Task[Runtime] | None = None
        self.loaded: Runtime | None = None
        self._failed_at = 0.0
        self._last_error: str | None = None
        self._config: dict = {}  # the loaded model's config fields (capability detection)

    def get(self) -> asyncio.Task[Runtime]:
        """The (possibly still loading) runtime for the current settings."""
        settings = self._settings()
        key = runtime_key(settings)
        if self._task is None or key != self._key or self._retry_remote(settings):
            old = self.loaded
            self._key, self.loaded = key, None
            self._task = asyncio.ensure_future(self._load(settings, old))
            self._task.add_done_callback(lambda t: t.cancelled() or t.exception())
        elif self.loaded is not None and self.loaded.capabilities.setting != settings.infilling:
            self._redetect(self.loaded, settings)
        return self._task

    def _retry_remote(self, settings: Settings) -> bool:
        """A remote server that could not be reached may have come up since: try again, at most
        every ``REMOTE_RETRY_S`` (an in-process load that failed stays failed)."""
        task = self._task
        if not settings.remote or task is None or not task.done() or task.cancelled() or task.exception() is None:
            return False
        return time.monotonic() - self._failed_at >= REMOTE_RETRY_S

    async def _load(self, settings: Settings, previous: Runtime | None) -> Runtime:
        if previous is not None:
            await previous.backend.close()
        self._events.status("loading", f"loading {settings.model}")
        self._events.progress_begin(f"Code Llama: loading {settings.model}")
        backend, used = None, settings
        try:
            used = await asyncio.to_thread(load_settings, settings)
            tokenizer = await asyncio.to_thread(
                ModelTokenizer.from_pretrained, used.tokenizer_name, local_files_only=used.local_files_only
            )
            self._config = await asyncio.to_thread(model_config_of, used)
            found = capabilities.detect(used.model, self._config, tokenizer, used.infilling)
            backend = create_backend(used, tokenizer)
            loop = asyncio.get_running_loop()
            await backend.load(lambda message, percentage: loop.call_soon_threadsafe(
                self._events.progress_report, message, percentage))
        except (BackendError, TokenizerError, ModelFileError) as exc:
            message = load_failure(settings, used, exc)
            if backend is not None:
                await backend.close()  # a remote backend's connection pool
            self._failed_at = time.monotonic()
            log.info("model load failed: %s", message)
            self._events.progress_end("failed")
            self._events.status("error", message)
            if message != self._last_error:  # a remote retry that fails the same way is not shown again
                self._events.error(f"Code Llama: {message}")
            self._last_error = message
            raise BackendError(message) from exc
        self._last_error = None
        self.loaded = Runtime(tokenizer, backend, found)
        log.info("%s completes %s: %s", settings.model, found.completion_mode, found.why)
        # torch and transformers leave ~400k long-lived objects; a full collection walks them all
        # (~100-250 ms on the event loop, measured on 2 cores). Keep them out of its view.
        gc.freeze()
        self._events.progress_end("ready")
        self._events.status("ready", self._ready_message(self.loaded))
        return self.loaded

    def _redetect(self, runtime: Runtime, settings: Settings) -> None:
        """``infilling`` changes what the loaded model is asked for, not the model: no reload."""
        try:
            runtime.capabilities = capabilities.detect(settings.model, self._config, runtime.tokenizer,
                                                       settings.infilling)
        except TokenizerError as exc:  # infilling: on, and the tokenizer has no FIM tokens
            runtime.capabilities = replace(runtime.capabilities, setting=settings.infilling)
            self._events.error(f"Code Llama: {exc}; completions stay {runtime.capabilities.completion_mode}")
        self._events.status("ready", self._ready_message(runtime))

    @staticmethod
    def _ready_message(runtime: Runtime) -> str:
        found = runtime.capabilities
        return f"{runtime.backend.status().message}; {found.completion_mode} ({found.why})"

    async def close(self) -> None:
        if self.loaded is not None:
            await self.loaded.backend.close()
