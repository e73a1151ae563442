"""OpenAI's ``/v1/completions`` (and ``/health``, ``/v1/models``, ``/lease``) for one loaded engine,
as an ASGI application on Starlette's routing and responses.

Besides the routes it keeps what the command needs to know: whether the model has loaded, how
many leases are held, and whether it has been idle long enough to exit. Errors are OpenAI's
``{"error": {"message", "type", "code"}}`` bodies, router errors (404, 405) included.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from code_llama_ls.backends.base import BackendError, CancelToken, GenerationRequest
from code_llama_ls.backends.http import StopCutter
from code_llama_ls.prompts.tokenization import INFILL_TOKENS, ModelTokenizer

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 2**20
EVENT_STREAM_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
"""Set whole: Starlette would add ``; charset=utf-8`` to a ``text/`` media type."""


class ApiError(Exception):
    """A request the API refuses, answered with OpenAI's error body."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


def error_body(message: str, kind: str) -> dict:
    return {"error": {"message": message, "type": kind, "code": None}}


def text_prompt_ids(tokenizer: ModelTokenizer, text: str) -> list[int]:
    """Token ids of a text prompt: ``<s>`` (for a vocabulary without Code Llama's control pieces,
    BOS where its tokenizer adds one), then the text with control pieces (``▁<PRE>`` …) as their
    ids and the runs between them encoded as SentencePiece does, its dummy prefix only before a
    run at the very start. That is what a Hugging Face tokenizer gives (vLLM's text path), except
    for text that starts with spaces, where SentencePiece (Meta's reference) wins. Other families'
    control pieces (``<|im_start|>``) in a text prompt stay text: send token ids for those."""
    start = [tokenizer.special.bos] if tokenizer.special.fim else tokenizer.prompt_start()
    pieces = {p: tokenizer.token_id(p) for p in ("<s>", "</s>", *(p for ps in INFILL_TOKENS.values() for p in ps))}
    controls = {p: i for p, i in pieces.items() if i is not None}
    if not controls:  # a vocabulary without these control pieces: the text is all text
        return [*start, *tokenizer.encode(text)]
    pattern = re.compile("|".join(re.escape(p) for p in sorted(controls, key=len, reverse=True)))
    ids = list(start)
    position = 0
    for match in [*pattern.finditer(text), None]:
        end = match.start() if match else len(text)
        run = text[position:end]
        if run:
            ids += tokenizer.encode(run) if position == 0 else tokenizer.encode_infilling(run)
        if match:
            ids.append(controls[match.group()])
            position = match.end()
    return ids


@dataclass(frozen=True)
class CompletionParams:
    prompt_ids: list[int]
    max_tokens: int
    temperature: float
    stops: list[str]
    stop_ids: frozenset[int]
    stream: bool
    include_usage: bool


def parse_completion(body: dict, tokenizer: ModelTokenizer, vocab_size: int) -> CompletionParams:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]  # a batch of one
    if isinstance(prompt, str):
        ids = text_prompt_ids(tokenizer, prompt)
    elif isinstance(prompt, list) and prompt and all(type(t) is int for t in prompt):
        ids = list(prompt)
    else:
        raise ApiError(400, "prompt must be a string, a non-empty list of token ids, or a batch of one of them")
    bad = [t for t in ids if not 0 <= t < vocab_size]
    if bad:
        raise ApiError(400, f"token id {bad[0]} is outside the vocabulary (0..{vocab_size - 1})")
    max_tokens = body.get("max_tokens", 16)
    if type(max_tokens) is not int or max_tokens < 1:
        raise ApiError(400, "max_tokens must be a positive integer")
    temperature = body.get("temperature", 1.0)
    if type(temperature) not in (int, float) or not 0 <= temperature <= 2:
        raise ApiError(400, "temperature must be a number from 0 to 2")
    if body.get("n", 1) != 1:
        raise ApiError(400, "only n=1 is served")
    stop = body.get("stop") or []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise ApiError(400, "stop must be a string or a list of strings")
    extra_ids = body.get("stop_token_ids") or []
    if not isinstance(extra_ids, list) or not all(type(t) is int for t in extra_ids):
        raise ApiError(400, "stop_token_ids must be a list of token ids")
    options = body.get("stream_options") or {}
    return CompletionParams(ids, max_tokens, float(temperature), stops, tokenizer.stop_ids() | frozenset(extra_ids),
                            bool(body.get("stream")), bool(isinstance(options, dict) and options.get("include_usage")))


@dataclass
class Counts:
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens served from the prefix KV cache


def completion_object(head: dict, text: str, finish: str | None, params: CompletionParams,
                      counts: Counts | None = None) -> dict:
    """A ``text_completion`` object (or stream chunk; with ``counts``, its usage); ``head`` is the
    same for all of one request."""
    obj: dict[str, Any] = {**head, "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}]}
    if counts is not None:
        prompt = len(params.prompt_ids)
        obj["usage"] = {"prompt_tokens": prompt, "completion_tokens": counts.completion_tokens,
                        "total_tokens": prompt + counts.completion_tokens,
                        "prompt_tokens_details": {"cached_tokens": counts.cached_tokens}}
    return obj


def server_sent_event(data: str) -> bytes:
    return f"data: {data}\n\n".encode()


async def json_body(request: Request) -> dict:
    """The request's JSON object. A body over ``MAX_BODY_BYTES`` is refused as soon as its
    Content-Length or the bytes received so far say so, so it is never held whole."""
    too_large = ApiError(413, f"request body over {MAX_BODY_BYTES} bytes")
    if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
        raise too_large
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise too_large
    except ClientDisconnect as exc:
        raise ApiError(400, "the client went away before its body ended") from exc
    try:
        data = json.loads(body or b"{}")
    except ValueError as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


async def until_disconnected(request: Request) -> None:
    """Return once the client has closed the connection (the body has been read by then)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def api_error(request: Request, exc: ApiError) -> JSONResponse:
    return JSONResponse(error_body(str(exc), exc.kind), status_code=exc.status)


class OpenAIApi:
    """The HTTP front of one in-process engine: an ASGI application (Starlette routes) that also
    loads the model, counts what runs and the leases held, and says when it has been idle."""

    def __init__(self, backend: Any, tokenizer: ModelTokenizer, served_name: str) -> None:
        self.backend = backend
        self.tokenizer = tokenizer
        self.served_name = served_name
        self.loads = 0
        self.requests = 0
        self.active = 0  # completions running
        self.in_flight = 0  # requests of any kind, leases included
        self.leases = 0
        self.last_activity = time.monotonic()
        self.started = time.time()
        self._loading: asyncio.Task | None = None
        self._closing = asyncio.Event()
        endpoints = {"/health": ("GET", self.health), "/v1/models": ("GET", self.models),
                     "/v1/completions": ("POST", self.completions), "/lease": ("GET", self.lease)}
        self._methods = {path: method for path, (method, _) in endpoints.items()}
        self._app = Starlette(routes=[Route(path, handler, methods=[method])
                                      for path, (method, handler) in endpoints.items()],
                              exception_handlers={ApiError: api_error, HTTPException: self._route_error})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.in_flight += 1
        self.last_activity = time.monotonic()
        try:
            await self._app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self.last_activity = time.monotonic()

    # -- lifecycle -------------------------------------------------------------------------

    def start_loading(self) -> None:
        async def load() -> None:
            await self.backend.load(lambda message, pct: log.info("%s", message))
            self.loads += 1

        self._loading = asyncio.ensure_future(load())

    @property
    def ready(self) -> bool:
        return self._loading is not None and self._loading.done() and not self._loading.exception()

    async def wait_ready(self) -> None:
        assert self._loading is not None
        try:
            await asyncio.shield(self._loading)
        except BackendError as exc:
            raise ApiError(500, str(exc), "server_error") from exc

    async def wait_idle(self, idle_timeout_s: float) -> None:
        """Return once nothing ran and no lease was held for ``idle_timeout_s`` (loading counts)."""
        while True:
            if self.in_flight or self.leases or not (self._loading and self._loading.done()):
                self.last_activity = time.monotonic()
            remaining = self.last_activity + idle_timeout_s - time.monotonic()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, 1.0))

    def close(self) -> None:
        """End the leases and cancel the generations, so that every connection can finish."""
        self._closing.set()

    async def _until_gone(self, request: Request) -> None:
        """Return once the client has disconnected or the API is closing."""
        disconnected = asyncio.ensure_future(until_disconnected(request))
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({disconnected, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            disconnected.cancel()
            closing.cancel()

    # -- endpoints -------------------------------------------------------------------------

    async def health(self, request: Request) -> JSONResponse:
        status = self.backend.status()
        return JSONResponse({
            "status": "ok" if self.ready else status.state, "model": self.served_name, "device": status.device,
            "loads": self.loads, "requests": self.requests, "active": self.active, "leases": self.leases,
            "pid": os.getpid(), "message": status.message,
        }, status_code=200 if self.ready else 503)

    async def models(self, request: Request) -> JSONResponse:
        if not self.ready:
            raise ApiError(503, self.backend.status().message or "the model is loading", "unavailable")
        return JSONResponse({"object": "list", "data": [
            {"id": self.served_name, "object": "model", "created": int(self.started), "owned_by": "code-llama-ls"}]})

    async def lease(self, request: Request) -> StreamingResponse:
        """A connection a language server holds open while it uses this server: no body, until the
        holder goes away (or the server closes)."""
        return StreamingResponse(self._held_lease(request), media_type="text/plain")

    async def _held_lease(self, request: Request) -> AsyncIterator[bytes]:
        self.leases += 1
        try:
            await self._until_gone(request)
        finally:
            self.leases -= 1
            self.last_activity = time.monotonic()
        yield b""

    async def completions(self, request: Request) -> JSONResponse | StreamingResponse:
        body = await json_body(request)
        model = body.get("model")
        if model not in (None, "", self.served_name):
            raise ApiError(404, f"model {model!r} is not served here; this server serves {self.served_name!r}",
                           "not_found_error")
        await self.wait_ready()
        params = parse_completion(body, self.tokenizer, self.tokenizer.vocab_size)
        head = {"id": f"cmpl-{uuid.uuid4().hex[:24]}", "object": "text_completion", "created": int(time.time()),
                "model": self.served_name}
        if params.stream:
            return StreamingResponse(self._events(request, head, params), headers=EVENT_STREAM_HEADERS)
        async with self._generation(request) as cancel:
            text, finish, counts = "", None, Counts()
            async with contextlib.aclosing(self._generate(params, cancel, counts)) as pieces:
                async for piece, finish in pieces:
                    text += piece
        return JSONResponse(completion_object(head, text, finish, params, counts))

    async def _events(self, request: Request, head: dict, params: CompletionParams) -> AsyncIterator[bytes]:
        """The stream's ``text_completion`` chunks, the usage chunk if asked, then ``[DONE]``."""
        async with self._generation(request) as cancel:
            counts = Counts()
            try:
                async with contextlib.aclosing(self._generate(params, cancel, counts)) as pieces:
                    async for piece, finish in pieces:
                        if piece or finish:
                            chunk = completion_object(head, piece, finish, params)
                            yield server_sent_event(json.dumps(chunk, ensure_ascii=False))
            except ApiError as exc:  # the status line is sent: report in the stream, as vLLM does
                yield server_sent_event(json.dumps(error_body(str(exc), exc.kind)))
            if params.include_usage:
                usage = completion_object(head, "", None, params, counts)
                usage["choices"] = []
                yield server_sent_event(json.dumps(usage))
            yield server_sent_event("[DONE]")

    @contextlib.asynccontextmanager
    async def _generation(self, request: Request) -> AsyncIterator[CancelToken]:
        """One generation, counted in ``requests`` and ``active``; its token is cancelled when the
        client disconnects, when the API closes and when it ends (also when writing failed)."""
        self.requests += 1
        self.active += 1
        cancel = CancelToken()
        watcher = asyncio.ensure_future(self._until_gone(request))
        watcher.add_done_callback(lambda _: cancel.cancel())
        try:
            yield cancel
        finally:
            cancel.cancel()
            watcher.cancel()
            self.active -= 1

    async def _generate(self, params: CompletionParams, cancel: CancelToken, counts: Counts):
        """(text, finish_reason or None) per generated piece, the last with the reason; ``counts`` kept up."""
        cutter = StopCutter(params.stops)
        request = GenerationRequest(params.prompt_ids, params.max_tokens, params.temperature, params.stop_ids)
        try:
            async with contextlib.aclosing(self.backend.stream(request, cancel)) as chunks:
                async for chunk in chunks:
                    counts.completion_tokens = chunk.tokens or counts.completion_tokens
                    counts.cached_tokens = chunk.reused_tokens or counts.cached_tokens
                    text = cutter.feed(chunk.text)
                    if cutter.stopped:
                        yield text, "stop"
                        return
                    if chunk.stop_reason is None:
                        yield text, None
                        continue
                    yield text + cutter.flush(), "length" if chunk.stop_reason == "max_tokens" else "stop"
                    return
        except BackendError as exc:
            raise ApiError(500, str(exc), "server_error") from exc

    async def _route_error(self, request: Request, exc: HTTPException) -> JSONResponse:
        """The router's 404 and 405, in OpenAI's error body."""
        path = request.url.path
        if exc.status_code == 404:
            message = f"no endpoint {path}"
        elif exc.status_code == 405:
            message = f"{path} takes {self._methods[path]}"
        else:
            message = exc.detail
        return JSONResponse(error_body(message, "invalid_request_error"), status_code=exc.status_code)
