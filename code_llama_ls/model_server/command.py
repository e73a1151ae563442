"""``code-llama-ls model-server``: the in-process model behind OpenAI's ``/v1/completions``.

One model load serves every editor window: language servers reach it with the ``openai``
backend (token-id prompts, so the model sees exactly the in-process prompt) over 127.0.0.1 or a
Unix socket. Generation is the in-process engine's (``--engine``: transformers, or llama.cpp for a
``.gguf`` file), prefix KV cache included; requests queue on its one worker thread.

Endpoints:

- ``POST /v1/completions``: ``prompt`` as token ids (or one list of them) or text (one string,
  tokenized by :func:`text_prompt_ids`: ``<s>`` first, control pieces such as ``▁<PRE>`` parsed,
  as vLLM's Hugging Face tokenizer does); ``max_tokens``
  (16), ``temperature`` (1.0, OpenAI's default), ``stop`` (strings), ``stop_token_ids`` (vLLM's
  extension; ``▁<EOT>`` and ``</s>`` always stop), ``stream`` with OpenAI's ``text_completion``
  chunks and ``stream_options.include_usage``. A client that disconnects cancels its generation.
- ``GET /v1/models``, ``GET /health`` (``loads``, ``requests``, ``active``, ``leases``; HTTP 503
  while the model loads).
- ``GET /lease``: a connection held open by a language server that uses this server (the shared
  model server); it answers nothing more and counts in ``leases``.

The server exits after ``--idle-timeout`` seconds with no request running and no lease held.
Plain HTTP/1.1 on asyncio streams (keep-alive; streams use chunked transfer encoding).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from code_llama_ls.backends.base import BackendError, CancelToken, GenerationRequest
from code_llama_ls.backends.http import StopCutter
from code_llama_ls.prompts.tokenization import INFILL_TOKENS, ModelTokenizer
from code_llama_ls.settings import Settings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 2**20
DISCONNECT_POLL_S = 0.05
READY_LINE = "code-llama-ls model-server listening on "
"""Printed (then the URL) on stdout once the socket accepts connections."""


class HttpError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


@dataclass
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        try:
            data = json.loads(self.body or b"{}")
        except ValueError as exc:
            raise HttpError(400, f"the body is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise HttpError(400, "the body must be a JSON object")
        return data


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 411: "Length Required",
            413: "Payload Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}


async def read_request(reader: asyncio.StreamReader) -> HttpRequest | None:
    """One HTTP/1.1 request, or None when the client closed the connection between requests."""
    line = await reader.readline()
    if not line.strip():
        return None
    try:
        method, target, _version = line.decode("latin-1").split()
    except ValueError as exc:
        raise HttpError(400, "malformed request line") from exc
    headers: dict[str, str] = {}
    while True:
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise HttpError(411, "send the body with Content-Length")
    length = int(headers.get("content-length") or 0)
    if length > MAX_BODY_BYTES:
        raise HttpError(413, f"request body over {MAX_BODY_BYTES} bytes")
    body = await reader.readexactly(length) if length else b""
    return HttpRequest(method.upper(), target.split("?", 1)[0], headers, body)


def _head(status: int, content_type: str, extra: str) -> bytes:
    return (f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {content_type}\r\n"
            f"{extra}\r\n").encode("latin-1")


async def send_json(writer: asyncio.StreamWriter, status: int, obj: Any) -> None:
    body = json.dumps(obj, ensure_ascii=False).encode()
    writer.write(_head(status, "application/json", f"Content-Length: {len(body)}\r\n") + body)
    await writer.drain()


def error_body(message: str, kind: str) -> dict:
    return {"error": {"message": message, "type": kind, "code": None}}


class ChunkedWriter:
    """A ``text/event-stream`` response in chunked transfer encoding (the connection stays usable)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def start(self) -> None:
        self._writer.write(_head(200, "text/event-stream", "Cache-Control: no-cache\r\n"
                                 "Transfer-Encoding: chunked\r\n"))
        await self._writer.drain()

    async def event(self, data: str) -> None:
        payload = f"data: {data}\n\n".encode()
        self._writer.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
        await self._writer.drain()

    async def end(self) -> None:
        self._writer.write(b"0\r\n\r\n")
        await self._writer.drain()


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
        raise HttpError(400, "prompt must be a string, a non-empty list of token ids, or a batch of one of them")
    bad = [t for t in ids if not 0 <= t < vocab_size]
    if bad:
        raise HttpError(400, f"token id {bad[0]} is outside the vocabulary (0..{vocab_size - 1})")
    max_tokens = body.get("max_tokens", 16)
    if type(max_tokens) is not int or max_tokens < 1:
        raise HttpError(400, "max_tokens must be a positive integer")
    temperature = body.get("temperature", 1.0)
    if type(temperature) not in (int, float) or not 0 <= temperature <= 2:
        raise HttpError(400, "temperature must be a number from 0 to 2")
    if body.get("n", 1) != 1:
        raise HttpError(400, "only n=1 is served")
    stop = body.get("stop") or []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise HttpError(400, "stop must be a string or a list of strings")
    extra_ids = body.get("stop_token_ids") or []
    if not isinstance(extra_ids, list) or not all(type(t) is int for t in extra_ids):
        raise HttpError(400, "stop_token_ids must be a list of token ids")
    options = body.get("stream_options") or {}
    return CompletionParams(ids, max_tokens, float(temperature), stops, tokenizer.stop_ids() | frozenset(extra_ids),
                            bool(body.get("stream")), bool(isinstance(options, dict) and options.get("include_usage")))


class ModelServer:
    """The HTTP front of one loaded in-process engine."""

    def __init__(self, backend: Any, tokenizer: ModelTokenizer, served_name: str, idle_timeout_s: float) -> None:
        self.backend = backend
        self.tokenizer = tokenizer
        self.served_name = served_name
        self.idle_timeout_s = idle_timeout_s
        self.loads = 0
        self.requests = 0
        self.active = 0  # completions running
        self.in_flight = 0  # requests of any kind
        self.leases = 0
        self.last_activity = time.monotonic()
        self.started = time.time()
        self._loading: asyncio.Task | None = None

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
            raise HttpError(500, str(exc), "server_error") from exc

    async def wait_idle(self) -> None:
        """Return once nothing ran and no lease was held for ``idle_timeout_s`` (loading counts)."""
        while True:
            if self.in_flight or self.leases or not (self._loading and self._loading.done()):
                self.last_activity = time.monotonic()
            remaining = self.last_activity + self.idle_timeout_s - time.monotonic()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, 1.0))

    # -- connections -----------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    request = await read_request(reader)
                except HttpError as exc:
                    await send_json(writer, exc.status, error_body(str(exc), exc.kind))
                    return
                if request is None:
                    return
                self.last_activity = time.monotonic()
                if request.path == "/lease" and request.method == "GET":
                    await self._lease(reader, writer)
                    return
                self.in_flight += 1
                try:
                    await self._route(request, reader, writer)
                except HttpError as exc:
                    await send_json(writer, exc.status, error_body(str(exc), exc.kind))
                finally:
                    self.in_flight -= 1
                    self.last_activity = time.monotonic()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away
        finally:
            writer.close()

    async def _route(self, request: HttpRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        routes: dict[str, tuple[str, Callable[..., Awaitable[None]]]] = {
            "/health": ("GET", self._health),
            "/v1/models": ("GET", self._models),
            "/v1/completions": ("POST", self._completions),
        }
        if request.path not in routes:
            raise HttpError(404, f"no endpoint {request.path}")
        method, handler = routes[request.path]
        if request.method != method:
            raise HttpError(405, f"{request.path} takes {method}")
        await handler(request, reader, writer)

    async def _health(self, request: HttpRequest, reader, writer) -> None:
        status = self.backend.status()
        await send_json(writer, 200 if self.ready else 503, {
            "status": "ok" if self.ready else status.state, "model": self.served_name, "device": status.device,
            "loads": self.loads, "requests": self.requests, "active": self.active, "leases": self.leases,
            "pid": os.getpid(), "message": status.message,
        })

    async def _models(self, request: HttpRequest, reader, writer) -> None:
        if not self.ready:
            raise HttpError(503, self.backend.status().message or "the model is loading", "unavailable")
        await send_json(writer, 200, {"object": "list", "data": [
            {"id": self.served_name, "object": "model", "created": int(self.started), "owned_by": "code-llama-ls"}]})

    async def _lease(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.leases += 1
        try:
            writer.write(_head(200, "text/plain", "Transfer-Encoding: chunked\r\n"))
            await writer.drain()
            while await reader.read(4096):
                pass  # the holder never sends more; EOF means it is gone
        finally:
            self.leases -= 1
            self.last_activity = time.monotonic()

    async def _completions(self, request: HttpRequest, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        body = request.json()
        model = body.get("model")
        if model not in (None, "", self.served_name):
            raise HttpError(404, f"model {model!r} is not served here; this server serves {self.served_name!r}",
                            "not_found_error")
        await self.wait_ready()
        params = parse_completion(body, self.tokenizer, self.tokenizer.vocab_size)
        self.requests += 1
        self.active += 1
        cancel = CancelToken()
        watcher = asyncio.ensure_future(_cancel_on_disconnect(reader, cancel))
        head = {"id": f"cmpl-{uuid.uuid4().hex[:24]}", "object": "text_completion", "created": int(time.time()),
                "model": self.served_name}
        try:
            if params.stream:
                await self._stream(head, params, cancel, writer)
            else:
                text, finish, counts = "", None, Counts()
                async for piece, finish in self._generate(params, cancel, counts):
                    text += piece
                await send_json(writer, 200, _object(head, text, finish, params, counts))
        finally:
            cancel.cancel()  # also when writing failed (the client went away): the generation stops
            watcher.cancel()
            self.active -= 1

    async def _stream(self, head: dict, params: CompletionParams, cancel: CancelToken,
                      writer: asyncio.StreamWriter) -> None:
        out = ChunkedWriter(writer)
        await out.start()
        counts = Counts()
        try:
            async for piece, finish in self._generate(params, cancel, counts):
                if piece or finish:
                    await out.event(json.dumps(_object(head, piece, finish, params), ensure_ascii=False))
        except HttpError as exc:  # the status line is sent: report in the stream, as vLLM does
            await out.event(json.dumps(error_body(str(exc), exc.kind)))
        if params.include_usage:
            usage = _object(head, "", None, params, counts)
            usage["choices"] = []
            await out.event(json.dumps(usage))
        await out.event("[DONE]")
        await out.end()

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
            raise HttpError(500, str(exc), "server_error") from exc


@dataclass
class Counts:
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens served from the prefix KV cache


def _object(head: dict, text: str, finish: str | None, params: CompletionParams, counts: Counts | None = None) -> dict:
    """A ``text_completion`` object (or stream chunk; with ``counts``, its usage); ``head`` is the
    same for all of one request."""
    obj: dict[str, Any] = {**head, "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}]}
    if counts is not None:
        prompt = len(params.prompt_ids)
        obj["usage"] = {"prompt_tokens": prompt, "completion_tokens": counts.completion_tokens,
                        "total_tokens": prompt + counts.completion_tokens,
                        "prompt_tokens_details": {"cached_tokens": counts.cached_tokens}}
    return obj


async def _cancel_on_disconnect(reader: asyncio.StreamReader, cancel: CancelToken) -> None:
    """Cancel the generation once the client's side of the connection is closed."""
    while not reader.at_eof():
        await asyncio.sleep(DISCONNECT_POLL_S)
    cancel.cancel()


# -- command line ----------------------------------------------------------------------------


def add_arguments(commands: Any) -> None:
    parser = commands.add_parser("model-server", help="serve the model over OpenAI's /v1/completions")
    parser.add_argument("--model", required=True, help="hub id or local folder")
    parser.add_argument("--tokenizer", help="hub id or folder of the tokenizer (default: the model's)")
    parser.add_argument("--served-model-name", help="the name clients send as `model` (default: --model)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"])
    parser.add_argument("--local-files-only", action="store_true", help="never download from the hub")
    defaults = Settings.model_fields
    parser.add_argument("--engine", default=defaults["engine"].default, choices=["auto", "transformers", "llama.cpp"],
                        help=defaults["engine"].description)
    parser.add_argument("--compile", default=defaults["compile"].default, choices=["auto", "on", "off"],
                        help=defaults["compile"].description)
    parser.add_argument("--threads", type=int, help=defaults["threads"].description)
    parser.add_argument("--max-context-tokens", type=int, help="llama.cpp engine: its context size "
                        "(default: as the language server's)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (default: %(default)s)")
    parser.add_argument("--socket", type=Path, help="listen on this Unix socket instead of host:port")
    parser.add_argument("--idle-timeout", type=float, default=600.0,
                        help="exit after this many seconds without requests or leases; 0: never (default: %(default)s)")


async def serve(args: argparse.Namespace) -> int:
    from code_llama_ls.backends import create_backend
    from code_llama_ls.model_files import ModelFileError
    from code_llama_ls.prompts.tokenization import TokenizerError

    try:
        tokenizer = ModelTokenizer.from_pretrained(args.tokenizer or args.model, local_files_only=args.local_files_only)
    except (TokenizerError, ModelFileError) as exc:
        print(f"code-llama-ls model-server: {exc}", file=sys.stderr)
        return 1
    settings = Settings(model=args.model, tokenizer=args.tokenizer, device=args.device, dtype=args.dtype,
                        local_files_only=args.local_files_only, engine=args.engine, compile=args.compile,
                        threads=args.threads, max_context_tokens=args.max_context_tokens)
    backend = create_backend(settings, tokenizer)
    server = ModelServer(backend, tokenizer, args.served_model_name or args.model, args.idle_timeout)
    try:
        if args.socket is not None:
            args.socket.unlink(missing_ok=True)
            listener = await asyncio.start_unix_server(server.handle, path=str(args.socket))
            inode = args.socket.stat().st_ino
            url = f"unix://{args.socket.resolve()}"
        else:
            listener = await asyncio.start_server(server.handle, args.host, args.port)
            url = f"http://{args.host}:{listener.sockets[0].getsockname()[1]}"
    except OSError as exc:
        print(f"code-llama-ls model-server: cannot listen: {exc}", file=sys.stderr)
        return 1
    server.start_loading()
    print(READY_LINE + url, flush=True)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    idle = asyncio.ensure_future(server.wait_idle()) if args.idle_timeout > 0 else asyncio.get_running_loop().create_future()
    await asyncio.wait({idle, stop}, return_when=asyncio.FIRST_COMPLETED)
    idle.cancel()
    listener.close()
    with contextlib.suppress(OSError):
        if args.socket is not None and args.socket.stat().st_ino == inode:
            args.socket.unlink()  # unless a newer server has bound the path meanwhile
    await backend.close()
    return 0


def main(args: argparse.Namespace) -> int:
    return asyncio.run(serve(args))
