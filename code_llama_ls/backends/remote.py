"""The part of every remote backend that is not about one server's wire format: load (connect and
check health), status, the streaming loop (cancellation, client-side stop cut, totals) and close.

A subclass says how to check the server (``_check``), and how to open a stream for a request
(``_open``: the open response and a parser from one line to an :class:`Event`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx

from code_llama_ls.backends.base import (
    BackendError,
    BackendStatus,
    CancelToken,
    Chunk,
    GenerationRequest,
    ProgressCallback,
    StopReason,
)
from code_llama_ls.backends.http import (
    CANCEL_POLL_S,
    Remote,
    RemoteOptions,
    StopCutter,
    describe_transport_error,
    lines_until_cancelled,
)
from code_llama_ls.backends.remote_prompt import stop_strings
from code_llama_ls.prompts.tokenization import ModelTokenizer

log = logging.getLogger(__name__)


@dataclass
class Event:
    """One parsed line of a server's stream."""

    text: str = ""
    finish: StopReason | None = None  # the server says generation ended, and why
    done: bool = False  # nothing more will come (``[DONE]``, ``"done": true``, ``"stop": true``)
    tokens: int | None = None  # the server's count of generated tokens so far, where it gives one


Parser = Callable[[str], "Event | None"]


class _Cancelled(Exception):
    pass


async def until_cancelled(awaitable, cancel: CancelToken):
    """Await ``awaitable`` unless ``cancel`` is set first (then it is cancelled: _Cancelled)."""
    task = asyncio.ensure_future(awaitable)
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=CANCEL_POLL_S)
            if cancel.cancelled and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                raise _Cancelled
        return task.result()
    except asyncio.CancelledError:
        task.cancel()
        raise


class RemoteBackend:
    """Common behaviour of the HTTP backends; see the module docstring."""

    name = "remote"
    supports_healing = False
    """Token healing needs a constrained first token; a remote server cannot do that, so the
    completion engine sends these backends the prompt unhealed."""

    def __init__(self, options: RemoteOptions, tokenizer: ModelTokenizer) -> None:
        self.options = options
        self.tokenizer = tokenizer
        self.model_name = options.model
        self._remote: Remote | None = None
        self._state = "idle"
        self._message = ""

    # -- protocol -------------------------------------------------------------------------

    @property
    def device_type(self) -> str:
        return "remote"

    def status(self) -> BackendStatus:
        where = self._remote.endpoint.shown if self._remote is not None else self.options.url
        return BackendStatus(self._state, self.model_name, "remote", self._message,  # type: ignore[arg-type]
                             {"backend": self.name, "url": where})

    def cache_stats(self) -> dict[str, dict]:
        return {}  # prompt KV reuse is the server's

    async def load(self, progress: ProgressCallback) -> None:
        if self._state == "ready" and self._remote is not None:
            return
        self._state = "loading"
        try:
            remote = self._remote or Remote(self._adjust(self.options))
            self._remote = remote
            progress(f"connecting to {remote.endpoint.shown}", 10)
            await self._check(remote)
        except BackendError as exc:
            self._state, self._message = "error", str(exc)
            raise
        except httpx.TransportError as exc:
            self._state = "error"
            self._message = describe_transport_error(exc, self._remote.endpoint, self.options.timeout_s) \
                if self._remote is not None else str(exc)
            raise BackendError(self._message) from exc
        self._state, self._message = "ready", f"{self.model_name} at {remote.endpoint.shown} ({self.name})"
        progress(self._message, 100)

    async def stream(self, request: GenerationRequest, cancel: CancelToken) -> AsyncIterator[Chunk]:
        if self._remote is None or self._state != "ready":
            raise BackendError(self._message or f"the {self.name} backend is not connected")
        started = time.perf_counter()
        prompt_tokens = len(request.prompt_ids)
        if cancel.cancelled:
            yield Chunk("", 0, "cancelled", prompt_tokens, 0.0, None)
            return
        try:
            response, parse = await until_cancelled(self._open(self._remote, request, cancel), cancel)
        except _Cancelled:
            yield Chunk("", 0, "cancelled", prompt_tokens, time.perf_counter() - started, None)
            return
        cutter = StopCutter(stop_strings(self.tokenizer, request.stop_ids))
        tokens = 0
        reason: StopReason | None = None
        lines = lines_until_cancelled(response, cancel, self._remote.endpoint, self.options.timeout_s)
        async with contextlib.aclosing(lines):
            async for line in lines:
                if line is None:
                    reason = "cancelled"
                    break
                event = parse(line)
                if event is None:
                    continue
                if event.text:
                    tokens = event.tokens if event.tokens is not None else tokens + 1
                    shown = cutter.feed(event.text)
                    if shown:
                        yield Chunk(shown, tokens)
                    if cutter.stopped:
                        reason = "eot"
                        break
                elif event.tokens is not None:
                    tokens = event.tokens
                if event.finish is not None:
                    reason = event.finish
                if event.done:
                    break
        if reason is None:
            # The body ended cleanly (its framing was complete: a cut connection raises above)
            # without a finish reason, as TGI's /v1/completions stream does.
            reason = "max_tokens" if tokens >= request.max_new_tokens else "eot"
        tail = cutter.flush() if reason != "cancelled" else ""
        yield Chunk(tail, tokens, reason, prompt_tokens, time.perf_counter() - started, None)

    async def close(self) -> None:
        if self._remote is not None:
            remote, self._remote = self._remote, None
            await remote.close()
        self._state = "idle"

    # -- for subclasses -------------------------------------------------------------------

    def _adjust(self, options: RemoteOptions) -> RemoteOptions:
        return options

    async def _check(self, remote: Remote) -> None:
        raise NotImplementedError

    async def _open(self, remote: Remote, request: GenerationRequest,
                    cancel: CancelToken) -> tuple[httpx.Response, Parser]:
        raise NotImplementedError

    def _auth_problem(self, status: int) -> BackendError:
        where = self._remote.endpoint.shown if self._remote is not None else self.options.url
        if self.options.api_key_env:
            return BackendError(f"the inference server at {where} refused the API key from "
                                f"${self.options.api_key_env} (HTTP {status})")
        return BackendError(f"the inference server at {where} wants an API key (HTTP {status}): "
                            "set codeLlama.apiKeyEnv to the name of an environment variable holding it")


def options_with(options: RemoteOptions, **changes) -> RemoteOptions:
    return dataclasses.replace(options, **changes)
