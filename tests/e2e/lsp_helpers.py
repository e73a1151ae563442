"""Helpers for talking to the real server over stdio with pytest-lsp."""

from __future__ import annotations

import asyncio
import sys

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "code_llama_ls", "--stdio"])
STATUS = "codeLlama/status"


def record_status(client: LanguageClient) -> list[dict]:
    """Collect codeLlama/status notifications as plain dicts."""
    seen: list[dict] = []

    @client.feature(STATUS)
    def _status(params) -> None:
        seen.append(params if isinstance(params, dict) else _to_dict(params))

    return seen


def _to_dict(value):
    if hasattr(value, "_asdict"):
        return {k: _to_dict(v) for k, v in value._asdict().items()}
    return value


def capabilities(*, inline: bool = True, progress: bool = True) -> types.ClientCapabilities:
    return types.ClientCapabilities(
        general=types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf16]),
        window=types.WindowClientCapabilities(work_done_progress=progress),
        text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities() if inline else None,
            completion=types.CompletionClientCapabilities(),
        ),
    )


async def start(client: LanguageClient, options: dict, *, inline: bool = True) -> types.InitializeResult:
    return await client.initialize_session(types.InitializeParams(
        capabilities=capabilities(inline=inline),
        initialization_options=options,
        root_uri=None,
    ))


async def wait_for_state(status: list[dict], state: str, timeout: float = 60.0) -> dict:
    async def poll() -> dict:
        while True:
            for item in status:
                if item.get("state") == state:
                    return item
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), timeout)


def open_document(client: LanguageClient, uri: str, text: str, language_id: str = "python", version: int = 1) -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language_id, version=version, text=text)))


def end_position(text: str) -> types.Position:
    """LSP position (UTF-16) of the end of ``text``."""
    lines = text.split("\n")
    return types.Position(line=len(lines) - 1, character=len(lines[-1].encode("utf-16-le")) // 2)
