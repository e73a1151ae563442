"""A small HTTP/1.1 server on real loopback sockets (127.0.0.1 on a free port, or a Unix socket),
written on asyncio streams so that tests control every byte: status codes, SSE and NDJSON
streams (chunked), delays, malformed lines, connections dropped mid-stream. It records each
request (method, path, headers, JSON body) and each client disconnect it notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self):
        return json.loads(self.raw) if self.raw else None


class Reply:
    """How a handler answers one request."""

    def __init__(self, writer: asyncio.StreamWriter, server: "LoopbackServer") -> None:
        self._writer = writer
        self._server = server
        self.closed = False  # the connection is not reused

    async def json(self, status: int, obj, reason: str = "") -> None:
        await self.body(status, json.dumps(obj).encode(), "application/json", reason)

    async def body(self, status: int, data: bytes, content_type: str = "text/plain", reason: str = "") -> None:
        head = (f"HTTP/1.1 {status} {reason or _REASONS.get(status, 'Status')}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(data)}\r\n\r\n")
        self._writer.write(head.encode() + data)
        await self._writer.drain()

    async def start_stream(self, content_type: str = "text/event-stream") -> None:
        self._writer.write((f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
                            "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n\r\n").encode())
        await self._writer.drain()

    async def chunk(self, data: str | bytes) -> None:
        """One chunk of a chunked body; raises ConnectionError when the client has gone."""
        raw = data.encode() if isinstance(data, str) else data
        if self._writer.is_closing():
            raise ConnectionResetError("client gone")
        self._writer.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
        await self._writer.drain()

    async def end_stream(self) -> None:
        self._writer.write(b"0\r\n\r\n")
        await self._writer.drain()

    async def drop(self) -> None:
        """Close the connection without finishing the response."""
        self.closed = True
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()

    async def stream_until_disconnect(self, line: str, every: float = 0.02, limit: float = 10.0) -> None:
        """Send ``line`` again and again until the client disconnects (recorded) or ``limit``."""
        await self.start_stream()
        loop = asyncio.get_running_loop()
        end = loop.time() + limit
        try:
            while loop.time() < end:
                await self.chunk(line)
                await asyncio.sleep(every)
        except (ConnectionError, OSError):
            self._server.disconnects += 1
            self._server.disconnected.set()
            self.closed = True


Handler = Callable[[Request, Reply], Awaitable[None]]

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 422: "Unprocessable Entity",
            500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass
class LoopbackServer:
    handler: Handler
    requests: list[Request] = field(default_factory=list)
    disconnects: int = 0
    connections: int = 0

    def __post_init__(self) -> None:
        self.disconnected = asyncio.Event()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.url = ""

    async def start(self, uds: str | None = None, port: int = 0, ssl=None) -> str:
        if uds is not None:
            self._server = await asyncio.start_unix_server(self._serve, path=uds)
            self.url = f"unix://{uds}"
        else:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", port, ssl=ssl)
            scheme = "https" if ssl is not None else "http"
            self.url = f"{scheme}://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        """Stop listening and close every open connection, as a server process that exits does."""
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        reply = Reply(writer, self)
        try:
            while not reply.closed:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                raw = await reader.readexactly(length) if length else b""
                request = Request(method, path, headers, raw)
                self.requests.append(request)
                await self.handler(request, reply)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            if not writer.is_closing():
                writer.close()


def sse(obj) -> str:
    return f"data: {obj if isinstance(obj, str) else json.dumps(obj)}\n\n"


def completion_chunk(text: str, finish: str | None = None) -> dict:
    """An OpenAI ``text_completion`` stream chunk."""
    return {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]}


async def stream_completion(reply: Reply, pieces, delay: float = 0.0) -> None:
    """An OpenAI completions stream of ``pieces`` (``delay`` seconds apart), then stop and ``[DONE]``."""
    await reply.start_stream()
    for piece in pieces:
        await reply.chunk(sse(completion_chunk(piece)))
        await asyncio.sleep(delay)
    await reply.chunk(sse(completion_chunk("", "stop")))
    await reply.chunk(sse("[DONE]"))
    await reply.end_stream()


def answering(pieces):
    """A handler: ``GET /v1/models`` as vLLM answers it, every other request ``pieces`` streamed."""
    async def handler(request: Request, reply: Reply) -> None:
        if not await openai_models(request, reply):
            await stream_completion(reply, pieces)
    return handler


async def openai_models(request: Request, reply: Reply, model: str = "m") -> bool:
    """Answers ``GET /v1/models`` (True) as vLLM does; False for other requests."""
    if request.method == "GET" and request.path == "/v1/models":
        await reply.json(200, {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "vllm"}]})
        return True
    return False
