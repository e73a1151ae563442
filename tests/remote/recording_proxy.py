"""A loopback HTTP/1.1 proxy that records each request body on its way to a real server.

Every request is forwarded on a connection of its own (``Connection: close``) and the answer is
piped back byte for byte, SSE streams included; a client that goes away closes the upstream
connection too, so the server sees the cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """One HTTP/1.1 request with a Content-Length body (what the backends send), or None when
    the client closed the connection first."""
    line = await reader.readline()
    if not line.strip():
        return None
    method, target, _version = line.decode("latin-1").split()
    headers: dict[str, str] = {}
    while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    return Request(method.upper(), target.split("?", 1)[0], headers, await reader.readexactly(length) if length else b"")


class RecordingProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.host, self.port = parts.hostname, parts.port
        self.requests: list[tuple[str, str, object]] = []  # method, path, JSON body (or None)
        self._server: asyncio.Server | None = None

    def bodies(self, path: str) -> list:
        return [body for method, p, body in self.requests if method == "POST" and p == path]

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: asyncio.StreamWriter | None = None
        try:
            request = await read_request(reader)
            if request is None:
                return
            self.requests.append((request.method, request.path, json.loads(request.body) if request.body else None))
            up_reader, upstream = await asyncio.open_connection(self.host, self.port)
            headers = "".join(f"{name}: {value}\r\n" for name, value in request.headers.items()
                              if name not in ("connection", "keep-alive"))
            upstream.write(f"{request.method} {request.path} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n"
                           .encode("latin-1") + request.body)
            await upstream.drain()
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # either side went away: both connections close below
        finally:
            for stream in (upstream, writer):
                if stream is not None:
                    stream.close()
                    with contextlib.suppress(Exception):
                        await stream.wait_closed()
