"""The real language server over stdio with a remote backend on loopback: every fault gives an
empty answer and one clear message, the server stays up, and the next request works."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from loopback import LoopbackServer, completion_chunk, openai_models, sse  # noqa: E402
from lsp_helpers import SERVER, open_document, record_status, start, wait_for_state  # noqa: E402

URI = "file:///workspace/add.py"
TEXT = "def add(a, b):\n\n\nprint(add(1, 2))\n"
CURSOR = types.Position(line=1, character=0)
WAIT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Scripted:
    """A loopback OpenAI-compatible server whose behaviour the test switches between requests."""

    def __init__(self) -> None:
        self.mode = "ok"

    async def __call__(self, request, reply) -> None:
        if await openai_models(request, reply):
            return
        if self.mode == "500":
            await reply.json(500, {"error": {"message": "engine overloaded"}})
            return
        if self.mode == "slow":
            await asyncio.sleep(3)
            return
        await reply.start_stream()
        if self.mode == "malformed":
            await reply.chunk("data: {not json\n\n")
        elif self.mode == "drop":
            await reply.chunk(sse(completion_chunk("    return")))
            await asyncio.sleep(0.05)
            await reply.drop()
            return
        else:
            for piece in ("    return", " a + b", " <EOT>"):
                await reply.chunk(sse(completion_chunk(piece)))
            await reply.chunk(sse(completion_chunk("", "stop")))
            await reply.chunk(sse("[DONE]"))
        await reply.end_stream()


def options(url: str, tokenizer_dir: Path) -> dict:
    return {"model": "m", "tokenizer": str(tokenizer_dir), "localFilesOnly": True, "backend": "openai",
            "url": url, "requestTimeoutS": 0.5, "maxRetries": 0, "contextEnabled": False, "maxNewTokens": 16,
            "debounceMs": 0}


async def inline(client: LanguageClient) -> list[str]:
    result = await asyncio.wait_for(client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI), position=CURSOR,
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked))), WAIT)
    return [item.insert_text for item in result.items]


def warnings_since(client: LanguageClient, count: int) -> list[str]:
    return [m.message for m in client.log_messages[count:] if m.type == types.MessageType.Warning]


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient):
    lsp_client.status = record_status(lsp_client)
    yield
    await asyncio.wait_for(lsp_client.shutdown_session(), WAIT)


async def test_faults_give_empty_answers_with_a_message_and_the_server_recovers(client: LanguageClient, tokenizer_dir):
    behaviour = Scripted()
    server = LoopbackServer(behaviour)
    url = await server.start()
    try:
        await start(client, options(url, tokenizer_dir))
        await wait_for_state(client.status, "ready", WAIT)
        open_document(client, URI, TEXT)
        assert await inline(client) == ["    return a + b"]

        for mode, message in (("500", "answered HTTP 500 Internal Server Error on /v1/completions: engine overloaded"),
                              ("slow", "sent nothing for 0.5 s"),
                              ("malformed", "malformed JSON in the completions stream"),
                              ("drop", "closed the connection")):
            behaviour.mode = mode
            seen = len(client.log_messages)
            assert await inline(client) == [], mode
            assert any(message in w for w in warnings_since(client, seen)), (mode, warnings_since(client, seen))
            behaviour.mode = "ok"
            assert await inline(client) == ["    return a + b"], f"the request after {mode!r} works"
    finally:
        await server.stop()


async def test_server_not_running_then_started(client: LanguageClient, tokenizer_dir):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    await start(client, options(url, tokenizer_dir))
    failed = await wait_for_state(client.status, "error", WAIT)
    assert "cannot connect to the inference server at " + url in failed["message"]
    assert "is it running?" in failed["message"]
    open_document(client, URI, TEXT)
    assert await inline(client) == []

    server = LoopbackServer(Scripted())
    await server.start(port=port)
    try:
        await asyncio.sleep(2.1)  # REMOTE_RETRY_S: the next request connects again
        assert await inline(client) == ["    return a + b"]
        assert client.status[-1]["state"] == "ready"
    finally:
        await server.stop()
