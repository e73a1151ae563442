"""The test's own LSP client for document-sync checks: a text model that counts positions in each
encoding as a client does, and a small synchronous JSON-RPC client over the server's stdio.

Nothing here comes from ``code_llama_ls``: the point is to check the server's copy of a document
against an independent model of what an editor holds.

Position rules (LSP 3.17): a line ends before its line break (``\\n``, ``\\r\\n`` or ``\\r``); a
column past the end of its line means the line's end (so a column "inside" a CRLF is the start of
the line break); a column inside a character (the second unit of a surrogate pair in UTF-16, a
continuation byte in UTF-8) means that character's start; a line past the last means the end of
the document.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BREAKS = re.compile(r"\r\n|\r|\n")


def read_exactly(path: Path) -> str:
    """A file's text with its line breaks as they are (``Path.read_text`` has no ``newline`` before 3.13)."""
    with path.open(encoding="utf-8", newline="") as file:
        return file.read()


def units(char: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(char.encode("utf-8", "surrogatepass"))
    if encoding == "utf-16":
        return len(char.encode("utf-16-le", "surrogatepass")) // 2
    assert encoding == "utf-32", encoding
    return 1


@dataclass
class TextModel:
    """What the editor holds: the text, addressed by (line, column) in one encoding."""

    text: str
    encoding: str

    def line_spans(self) -> list[tuple[int, int]]:
        """(start, end before the line break) of every line."""
        spans, start = [], 0
        for match in BREAKS.finditer(self.text):
            spans.append((start, match.start()))
            start = match.end()
        spans.append((start, len(self.text)))
        return spans

    def line_units(self, line: int) -> int:
        start, end = self.line_spans()[line]
        return sum(units(c, self.encoding) for c in self.text[start:end])

    def offset(self, line: int, column: int) -> int:
        spans = self.line_spans()
        if line >= len(spans):
            return len(self.text)
        start, end = spans[line]
        counted = 0
        for index in range(start, end):
            counted += units(self.text[index], self.encoding)
            if counted > column:
                return index
        return end

    def position(self, offset: int) -> dict:
        for line, (start, end) in enumerate(self.line_spans()):
            if offset <= end:
                assert offset >= start, "an offset inside a line break has no position"
                return {"line": line, "character": sum(units(c, self.encoding) for c in self.text[start:offset])}
        raise AssertionError(f"offset {offset} past the end")

    def range(self, start: int, end: int) -> dict:
        return {"start": self.position(start), "end": self.position(end)}

    def apply(self, change: dict) -> None:
        """One ``TextDocumentContentChangeEvent``, as the client applies it to its own copy."""
        if "range" not in change:
            self.text = change["text"]
            return
        rng = change["range"]
        a = self.offset(rng["start"]["line"], rng["start"]["character"])
        b = self.offset(rng["end"]["line"], rng["end"]["character"])
        self.text = self.text[:a] + change["text"] + self.text[max(a, b):]

    def apply_edits(self, edits: list[dict]) -> None:
        """``TextEdit``s of one document: all ranges refer to the text before any of them."""
        spans = [(self.offset(e["range"]["start"]["line"], e["range"]["start"]["character"]),
                  self.offset(e["range"]["end"]["line"], e["range"]["end"]["character"]), e["newText"])
                 for e in edits]
        for a, b, new in sorted(spans, reverse=True):
            self.text = self.text[:a] + new + self.text[b:]


class ServerError(Exception):
    def __init__(self, error: dict) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.error = error


@dataclass
class StdioClient:
    """``python -m code_llama_ls --stdio`` driven by raw JSON-RPC, synchronously."""

    on_request: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    notifications: list[dict] = field(default_factory=list)
    handler_errors: list[Exception] = field(default_factory=list)

    def __repr__(self) -> str:  # hypothesis prints the fixture with a failing example
        return f"StdioClient(pid={self.process.pid})"

    def __post_init__(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen([sys.executable, "-m", "code_llama_ls", "--stdio"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self._next_id = 0
        self._responses: dict[int, queue.Queue] = {}
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _write(self, message: dict) -> None:
        body = json.dumps(message).encode()
        with self._lock:
            self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.process.stdin.flush()

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            message = json.loads(stream.read(length))
            if "method" in message and "id" in message:
                threading.Thread(target=self._answer, args=(message,), daemon=True).start()
            elif "method" in message:
                self.notifications.append(message)
            else:
                self._responses.setdefault(message["id"], queue.Queue()).put(message)

    def _answer(self, message: dict) -> None:
        handler = self.on_request.get(message["method"])
        try:
            result = handler(message.get("params")) if handler is not None else None
        except Exception as exc:  # the test's own handler broke: the server hears why, the test sees it
            self.handler_errors.append(exc)
            self._write({"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32603, "message": repr(exc)}})
            return
        self._write({"jsonrpc": "2.0", "id": message["id"], "result": result})

    def request(self, method: str, params: Any, timeout: float = 30.0) -> Any:
        with self._lock:
            self._next_id += 1
            msg_id = self._next_id
        inbox = self._responses.setdefault(msg_id, queue.Queue())
        self._write({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        reply = inbox.get(timeout=timeout)
        del self._responses[msg_id]
        if "error" in reply:
            raise ServerError(reply["error"])
        return reply.get("result")

    def notify(self, method: str, params: Any) -> None:
        self._write({"jsonrpc": "2.0", "method": method, "params": params})

    def initialize(self, capabilities: dict, options: dict, root_uri: str | None = None) -> dict:
        result = self.request("initialize", {"processId": os.getpid(), "rootUri": root_uri,
                                             "capabilities": capabilities, "initializationOptions": options})
        self.notify("initialized", {})
        return result

    def close(self) -> None:
        try:
            self.request("shutdown", None, timeout=10)
            self.notify("exit", None)
            self.process.wait(timeout=10)
        except Exception:
            self.process.kill()
            self.process.wait()
        finally:
            self.process.stdout.close()
            self.process.stdin.close()

    def open(self, uri: str, text: str, language_id: str = "python", version: int = 1) -> None:
        self.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": language_id,
                                                              "version": version, "text": text}})

    def server_text(self, uri: str) -> dict:
        return self.request("codeLlama/documentText", {"textDocument": {"uri": uri}})
