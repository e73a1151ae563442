"""One language server over stdio, driven as an editor window drives it (benchmarks and the
real-server tests)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

START_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 60.0


class Window:
    """One language server over stdio, as an editor window runs it."""

    def __init__(self, options: dict, env: dict[str, str] | None = None, root_uri: str | None = None) -> None:
        from pygls.lsp.client import LanguageClient

        self.options = options
        self.env = env
        self.root_uri = root_uri
        self.client = LanguageClient("code-llama-ls-bench", "1")
        self.state: asyncio.Future = asyncio.get_running_loop().create_future()
        self.status: dict = {}
        self.messages: list[str] = []
        self.message_log: list[tuple[int, str]] = []  # (MessageType, text) of each of ``messages``

        @self.client.feature("codeLlama/status")
        def _status(params) -> None:
            status = params if isinstance(params, dict) else {k: getattr(params, k) for k in params._fields}
            self.status = status
            if status.get("state") in ("ready", "error") and not self.state.done():
                self.state.set_result(status)

        @self.client.feature("window/showMessage")
        def _show(params) -> None:
            self._message(params)

        @self.client.feature("window/logMessage")
        def _log(params) -> None:
            self._message(params)

    def _message(self, params) -> None:
        self.messages.append(params.message)
        self.message_log.append((int(params.type), params.message))

    async def start(self, timeout: float = START_TIMEOUT_S) -> dict:
        """Start and initialize the server; the first ``ready`` or ``error`` status."""
        from lsprotocol import types

        await self.client.start_io(sys.executable, "-m", "code_llama_ls", "--stdio", env=self.env)
        await self.client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(
                general=types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf16]),
                text_document=types.TextDocumentClientCapabilities(
                    inline_completion=types.InlineCompletionClientCapabilities())),
            initialization_options=self.options, root_uri=self.root_uri))
        self.client.initialized(types.InitializedParams())
        return await asyncio.wait_for(self.state, timeout)

    def open(self, uri: str, text: str, version: int = 1) -> None:
        from lsprotocol import types

        self.client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=uri, language_id="python", version=version, text=text)))

    def replace(self, uri: str, text: str, version: int) -> None:
        from lsprotocol import types

        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))

    async def complete(self, uri: str, line: int, character: int, timeout: float = REQUEST_TIMEOUT_S) -> list[str]:
        from lsprotocol import types

        result = await asyncio.wait_for(self.client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked))), timeout)
        return [item.insert_text for item in result.items] if result else []

    async def request(self, method: str, params: dict, timeout: float = REQUEST_TIMEOUT_S):
        return await asyncio.wait_for(self.client.protocol.send_request_async(method, params), timeout)

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(self.client.shutdown_async(None), 10)
            self.client.exit(None)
        except Exception:  # a server that died already: stop() below ends it either way
            pass
        process = self.client._server
        if process is not None and process.returncode is None:
            try:
                await asyncio.wait_for(process.wait(), 5)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
        await self.client.stop()


def end_of(text: str) -> tuple[int, int]:
    """(line, UTF-16 character) of the end of ``text``."""
    lines = text.split("\n")
    return len(lines) - 1, len(lines[-1].encode("utf-16-le")) // 2


def plain(value: Any) -> Any:
    """pygls hands custom results over as named tuples; the report wants dicts."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
