"""Loading the tokenizer and backend that the current settings name, once, off the event loop.

A failed load is reported once (status ``error`` and one message) and remembered: later
requests get empty results at once instead of retrying and re-reporting, until the model
settings change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from code_llama_ls.backends import create_backend
from code_llama_ls.backends.base import BackendError
from code_llama_ls.completion.engine import Runtime
from code_llama_ls.prompts.tokenization import InfillTokenizer, TokenizerError
from code_llama_ls.settings import Settings

log = logging.getLogger(__name__)


def runtime_key(settings: Settings) -> tuple:
    return (settings.backend, settings.model, settings.tokenizer_name, settings.device, settings.dtype,
            settings.local_files_only, settings.url)


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

    def get(self) -> asyncio.Task[Runtime]:
        """The (possibly still loading) runtime for the current settings."""
        settings = self._settings()
        key = runtime_key(settings)
        if self._task is None or key != self._key:
            old = self.loaded
            self._key, self.loaded = key, None
            self._task = asyncio.ensure_future(self._load(settings, old))
            self._task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return self._task

    async def _load(self, settings: Settings, previous: Runtime | None) -> Runtime:
        if previous is not None:
            await previous.backend.close()
        self._events.status("loading", f"loading {settings.model}")
        self._events.progress_begin(f"Code Llama: loading {settings.model}")
        try:
            tokenizer = await asyncio.to_thread(
                InfillTokenizer.from_pretrained, settings.tokenizer_name, local_files_only=settings.local_files_only
            )
            backend = create_backend(settings, tokenizer)
            loop = asyncio.get_running_loop()
            await backend.load(lambda message, percentage: loop.call_soon_threadsafe(
                self._events.progress_report, message, percentage))
        except (BackendError, TokenizerError) as exc:
            message = str(exc)
            log.error("model load failed: %s", message)
            self._events.progress_end("failed")
            self._events.status("error", message)
            self._events.error(f"Code Llama: {message}")
            raise BackendError(message) from exc
        self.loaded = Runtime(tokenizer, backend)
        self._events.progress_end("ready")
        self._events.status("ready", backend.status().message)
        return self.loaded

    async def close(self) -> None:
        if self.loaded is not None:
            await self.loaded.backend.close()
