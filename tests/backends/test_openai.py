"""The ``openai`` backend against loopback servers: token-id prompts, SSE, stop, cancel, Unix
sockets, ``promptFormat: auto``."""

from __future__ import annotations

import asyncio

import pytest
from backend_helpers import options
from loopback import completion_chunk, openai_models, sse

from code_llama_ls.backends.base import CancelToken, GenerationRequest
from code_llama_ls.backends.openai_backend import OpenAICompletionsBackend
from code_llama_ls.backends.remote_prompt import prompt_text
from code_llama_ls.prompts.fim import Budget, build_infill_prompt

BEFORE = "def add(a, b):\n    "
AFTER = "\n\nprint(add(1, 2))\n"


def fim_request(tokenizer, max_new_tokens: int = 16) -> GenerationRequest:
    prompt = build_infill_prompt(tokenizer, BEFORE, AFTER, Budget(4096, max_new_tokens))
    return GenerationRequest(prompt.ids, max_new_tokens, 0.0, tokenizer.stop_ids())


async def collect(backend, request, cancel=None, after_first=None):
    cancel = cancel or CancelToken()
    chunks = []
    async for chunk in backend.stream(request, cancel):
        chunks.append(chunk)
        if after_first is not None and len(chunks) == 1:
            after_first(cancel)
    return chunks


def scripted(pieces, finish="stop", delay=0.0):
    async def handler(request, reply):
        if await openai_models(request, reply):
            return
        await reply.start_stream()
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            await reply.chunk(sse(completion_chunk(piece, finish if last else None)))
            await asyncio.sleep(delay)
        await reply.chunk(sse("[DONE]"))
        await reply.end_stream()
    return handler


async def endless_stream(request, reply):
    """"x" chunks until the client disconnects."""
    if await openai_models(request, reply):
        return
    await reply.stream_until_disconnect(sse(completion_chunk("x")))


async def connected(url, tokenizer, **changes) -> OpenAICompletionsBackend:
    backend = OpenAICompletionsBackend(options(url, **changes), tokenizer)
    await backend.load(lambda message, pct: None)
    return backend


async def test_token_ids_are_sent_and_text_streams(serve, tokenizer):
    server = await serve(scripted(["return", " a", " + b"]))
    backend = await connected(server.url, tokenizer)
    try:
        request = fim_request(tokenizer)
        chunks = await collect(backend, request)
    finally:
        await backend.close()
    assert "".join(c.text for c in chunks) == "return a + b"
    assert chunks[-1].stop_reason == "eot" and chunks[-1].tokens == 3
    assert chunks[-1].prompt_tokens == len(request.prompt_ids)
    body = server.requests[-1].json
    assert server.requests[-1].path == "/v1/completions"
    assert body["prompt"] == request.prompt_ids
    assert body["max_tokens"] == 16 and body["temperature"] == 0.0 and body["stream"] is True
    assert body["stop_token_ids"] == sorted(tokenizer.stop_ids())
    assert " <EOT>" in body["stop"] and body["model"] == "m"
    assert backend.status().device == "remote" and backend.device_type == "remote"


async def test_length_is_max_tokens(serve, tokenizer):
    server = await serve(scripted(["x", "y"], finish="length"))
    backend = await connected(server.url, tokenizer)
    try:
        chunks = await collect(backend, fim_request(tokenizer, 2))
    finally:
        await backend.close()
    assert chunks[-1].stop_reason == "max_tokens"


async def test_unix_socket_url(serve, tokenizer, tmp_path):
    server = await serve(scripted(["ok"]), uds=str(tmp_path / "model.sock"))
    assert server.url.startswith("unix:///")
    backend = await connected(server.url, tokenizer)
    try:
        chunks = await collect(backend, fim_request(tokenizer))
    finally:
        await backend.close()
    assert "".join(c.text for c in chunks) == "ok"
    assert server.requests[-1].json["prompt"] == fim_request(tokenizer).prompt_ids


async def test_base_url_with_v1_suffix(serve, tokenizer):
    server = await serve(scripted(["ok"]))
    backend = await connected(server.url + "/v1/", tokenizer)
    try:
        await collect(backend, fim_request(tokenizer))
    finally:
        await backend.close()
    assert [r.path for r in server.requests] == ["/v1/models", "/v1/completions"]


@pytest.mark.parametrize("pieces", [["a = 1 <EOT>", " junk"], ["a = 1 <E", "OT>", " junk"], ["a = 1", " ", "<EOT>"]])
async def test_text_is_cut_client_side_at_eot(serve, tokenizer, pieces):
    server = await serve(scripted(pieces))
    backend = await connected(server.url, tokenizer)
    try:
        chunks = await collect(backend, fim_request(tokenizer))
    finally:
        await backend.close()
    assert "".join(c.text for c in chunks) == "a = 1"
    assert chunks[-1].stop_reason == "eot"


async def test_a_held_back_partial_stop_string_is_shown_when_it_is_not_one(serve, tokenizer):
    server = await serve(scripted(["x <E", "NDING"]))
    backend = await connected(server.url, tokenizer)
    try:
        chunks = await collect(backend, fim_request(tokenizer))
    finally:
        await backend.close()
    assert "".join(c.text for c in chunks) == "x <ENDING"


async def test_cancel_closes_the_stream_and_the_server_sees_it(serve, tokenizer):
    server = await serve(endless_stream)
    backend = await connected(server.url, tokenizer)
    try:
        chunks = await asyncio.wait_for(collect(backend, fim_request(tokenizer, 1000),
                                                after_first=lambda cancel: cancel.cancel()), 5)
        await asyncio.wait_for(server.disconnected.wait(), 5)
    finally:
        await backend.close()
    assert chunks[-1].stop_reason == "cancelled"
    assert len(chunks) < 10, "stopped within a few chunks of the cancel"
    assert server.disconnects == 1


async def test_cancel_while_the_server_has_not_answered(serve, tokenizer):
    gate = asyncio.Event()

    async def silent(request, reply):
        if await openai_models(request, reply):
            return
        await gate.wait()  # never answers while the test runs

    server = await serve(silent)
    backend = await connected(server.url, tokenizer)
    cancel = CancelToken()
    asyncio.get_running_loop().call_later(0.2, cancel.cancel)
    try:
        chunks = await asyncio.wait_for(collect(backend, fim_request(tokenizer), cancel), 3)
    finally:
        gate.set()
        await backend.close()
    assert [c.stop_reason for c in chunks] == ["cancelled"]


async def test_auto_prompt_format_falls_back_to_text_once_per_url(serve, tokenizer):
    async def text_only(request, reply):
        if await openai_models(request, reply):
            return
        if not isinstance(request.json["prompt"], str):
            await reply.json(422, {"detail": [{"loc": ["body", "prompt"], "msg": "Input should be a valid string",
                                               "input": request.json["prompt"]}]})
            return
        await scripted(["ok"])(request, reply)

    server = await serve(text_only)
    backend = await connected(server.url, tokenizer)
    request = fim_request(tokenizer)
    try:
        first = await collect(backend, request)
        second = await collect(backend, request)
    finally:
        await backend.close()
    assert "".join(c.text for c in first) == "ok" == "".join(c.text for c in second)
    prompts = [r.json["prompt"] for r in server.requests if r.path == "/v1/completions"]
    text = prompt_text(tokenizer, request.prompt_ids)
    assert prompts == [request.prompt_ids, text, text], "ids once, then text, remembered"
    assert text.startswith("▁<PRE> def add(a, b):") and text.endswith("▁<MID>")


async def test_prompt_format_text_never_sends_ids(serve, tokenizer):
    server = await serve(scripted(["ok"]))
    backend = await connected(server.url, tokenizer, prompt_format="text")
    try:
        await collect(backend, fim_request(tokenizer))
    finally:
        await backend.close()
    assert isinstance(server.requests[-1].json["prompt"], str)


async def test_chat_endpoint_for_instruct_requests(serve, tokenizer):
    async def chat(request, reply):
        if await openai_models(request, reply):
            return
        assert request.path == "/v1/chat/completions"
        await reply.start_stream()
        for piece, finish in (("Adds", None), (" numbers.", "stop")):
            await reply.chunk(sse({"object": "chat.completion.chunk", "choices": [
                {"index": 0, "delta": {"content": piece}, "finish_reason": finish}]}))
        await reply.chunk(sse("[DONE]"))
        await reply.end_stream()

    server = await serve(chat)
    backend = await connected(server.url, tokenizer, instruct_endpoint="chat")
    request = GenerationRequest([1, 2, 3], 50, 0.0, frozenset({2}),
                                messages=(("system", "Be brief."), ("user", "Explain add.")))
    try:
        chunks = await collect(backend, request)
    finally:
        await backend.close()
    assert "".join(c.text for c in chunks) == "Adds numbers."
    body = server.requests[-1].json
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Explain add."}]
    assert "prompt" not in body


async def test_a_cancelled_lsp_request_closes_the_servers_stream(serve, tokenizer):
    """The client cancels the completion request: the engine stops the generation, and the
    server sees the connection close."""
    from code_llama_ls.completion.engine import CompletionEngine
    from code_llama_ls.runtime.manager import Runtime
    from code_llama_ls.documents import Document
    from code_llama_ls.settings import Settings

    server = await serve(endless_stream)
    backend = await connected(server.url, tokenizer)
    runtime = Runtime(tokenizer, backend)

    async def get_runtime():
        return runtime

    settings = Settings(model="m", backend="openai", url=server.url, max_new_tokens=1000, max_context_tokens=2048,
                        context_enabled=False)
    engine = CompletionEngine(get_runtime, lambda: settings)
    document = Document("file:///w/add.py", BEFORE + AFTER, 1, "python")
    task = asyncio.ensure_future(engine.complete(document, len(BEFORE)))
    try:
        while not any(r.method == "POST" for r in server.requests):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        task.cancel()
        await asyncio.wait_for(server.disconnected.wait(), 5)
    finally:
        await backend.close()
    assert server.disconnects == 1
