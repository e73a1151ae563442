"""Faults on real loopback sockets: each a clear BackendError and no text. Retries for
connection errors only; the API key is sent and never logged; TLS settings."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from backend_helpers import options
from loopback import completion_chunk, openai_models, sse

from code_llama_ls.backends.base import BackendError, CancelToken, GenerationRequest
from code_llama_ls.backends.http import Remote
from code_llama_ls.backends.llamacpp_backend import LlamaCppBackend
from code_llama_ls.backends.openai_backend import OpenAICompletionsBackend
from code_llama_ls.prompts.fim import InfillParts

REQUEST = GenerationRequest([1, 32007, 822, 32008, 32009], 8, 0.0, frozenset({32010}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def texts(backend, request=REQUEST) -> list[str]:
    return [c.text async for c in backend.stream(request, CancelToken()) if c.text]


async def connected(url, tokenizer, **changes):
    backend = OpenAICompletionsBackend(options(url, **changes), tokenizer)
    await backend.load(lambda message, pct: None)
    return backend


async def test_server_not_running_fails_the_load_clearly(tokenizer):
    backend = OpenAICompletionsBackend(options(f"http://127.0.0.1:{free_port()}"), tokenizer)
    with pytest.raises(BackendError, match=r"cannot connect to the inference server at http://127\.0\.0\.1:\d+: is it running\?"):
        await backend.load(lambda message, pct: None)
    assert backend.status().state == "error"
    await backend.close()


async def test_unix_socket_that_does_not_exist(tokenizer, tmp_path):
    backend = OpenAICompletionsBackend(options(f"unix://{tmp_path}/none.sock"), tokenizer)
    with pytest.raises(BackendError, match="cannot connect to the inference server at unix://.*none.sock"):
        await backend.load(lambda message, pct: None)
    await backend.close()


async def test_server_gone_after_load(serve, tokenizer):
    server = await serve(openai_only)
    backend = await connected(server.url, tokenizer)
    await server.stop()
    try:
        with pytest.raises(BackendError, match="is it running"):
            await texts(backend)
    finally:
        await backend.close()


async def openai_only(request, reply):
    await openai_models(request, reply)


async def test_http_500_with_its_reason(serve, tokenizer):
    async def fail(request, reply):
        if await openai_models(request, reply):
            return
        await reply.json(500, {"object": "error", "message": "CUDA out of memory", "type": "InternalServerError"})

    server = await serve(fail)
    backend = await connected(server.url, tokenizer, max_retries=3)
    try:
        with pytest.raises(BackendError, match=r"answered HTTP 500 Internal Server Error on /v1/completions: "
                                               r"CUDA out of memory"):
            await texts(backend)
    finally:
        await backend.close()
    assert sum(r.method == "POST" for r in server.requests) == 1, "an HTTP error is not retried"


async def test_error_details_never_echo_the_prompt(serve, tokenizer):
    async def refuse(request, reply):
        if await openai_models(request, reply):
            return
        await reply.json(400, {"detail": [{"loc": ["body", "prompt"], "msg": "too long",
                                           "input": "def secret_function(): pass"}]})

    server = await serve(refuse)
    backend = await connected(server.url, tokenizer, prompt_format="token_ids")
    try:
        with pytest.raises(BackendError) as caught:
            await texts(backend)
    finally:
        await backend.close()
    assert "body.prompt: too long" in str(caught.value)
    assert "secret_function" not in str(caught.value)


async def test_slower_than_the_timeout(serve, tokenizer):
    async def slow(request, reply):
        if await openai_models(request, reply):
            return
        await asyncio.sleep(3)
        await reply.json(200, {})

    server = await serve(slow)
    backend = await connected(server.url, tokenizer, timeout_s=0.3, max_retries=2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(BackendError, match=r"sent nothing for 0\.3 s"):
            await texts(backend)
    finally:
        await backend.close()
    assert loop.time() - started < 2
    assert sum(r.method == "POST" for r in server.requests) == 1, "a timeout is not retried"


async def test_silence_mid_stream_hits_the_timeout(serve, tokenizer):
    async def stalls(request, reply):
        if await openai_models(request, reply):
            return
        await reply.start_stream()
        await reply.chunk(sse(completion_chunk("x")))
        await asyncio.sleep(3)

    server = await serve(stalls)
    backend = await connected(server.url, tokenizer, timeout_s=0.3)
    try:
        with pytest.raises(BackendError, match=r"sent nothing for 0\.3 s"):
            await texts(backend)
    finally:
        await backend.close()


@pytest.mark.parametrize("line, message", [
    ("data: {\"choices\": [{\"text\": \"x\"\n\n", "malformed JSON in the completions stream"),
    ("data: [1, 2]\n\n", "expected a JSON object"),
    ("data: {\"error\": {\"message\": \"engine died\"}}\n\n", "reported an error in the completions stream: engine died"),
])
async def test_malformed_stream(serve, tokenizer, line, message):
    async def bad(request, reply):
        if await openai_models(request, reply):
            return
        await reply.start_stream()
        await reply.chunk(sse(completion_chunk("ok")))
        await reply.chunk(line)
        await reply.end_stream()

    server = await serve(bad)
    backend = await connected(server.url, tokenizer)
    try:
        with pytest.raises(BackendError, match=message):
            await texts(backend)
    finally:
        await backend.close()


async def test_connection_dropped_mid_stream_is_not_retried(serve, tokenizer):
    async def drops(request, reply):
        if await openai_models(request, reply):
            return
        await reply.start_stream()
        await reply.chunk(sse(completion_chunk("partial")))
        await asyncio.sleep(0.05)
        await reply.drop()

    server = await serve(drops)
    backend = await connected(server.url, tokenizer, max_retries=3)
    try:
        with pytest.raises(BackendError, match="closed the connection"):
            await texts(backend)
    finally:
        await backend.close()
    assert sum(r.method == "POST" for r in server.requests) == 1, "never retried after text was streamed"


async def test_connection_refused_is_retried_until_the_server_is_up(serve, tokenizer):
    port = free_port()
    first = await serve(openai_only, port=port)
    backend = await connected(first.url, tokenizer, max_retries=5)
    await first.stop()

    async def answers(request, reply):
        if await openai_models(request, reply):
            return
        await reply.start_stream()
        await reply.chunk(sse(completion_chunk("back", "stop")))
        await reply.chunk(sse("[DONE]"))
        await reply.end_stream()

    async def come_back():
        await asyncio.sleep(0.5)  # first try and a retry or two are refused meanwhile
        return await serve(answers, port=port)

    try:
        returning = asyncio.ensure_future(come_back())
        assert await texts(backend) == ["back"]
        second = await returning
    finally:
        await backend.close()
    assert [r.method for r in second.requests] == ["POST"]


async def test_retries_are_bounded(tokenizer):
    port = free_port()
    remote = Remote(options(f"http://127.0.0.1:{port}", max_retries=2))
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(BackendError, match=r"after 3 attempts"):
            await remote.open_stream("/v1/completions", {}, CancelToken())
    finally:
        await remote.close()
    assert 0.5 < loop.time() - started < 3, "two backoffs (0.2 s, 0.4 s), then the error"


async def test_api_key_is_sent_and_never_logged(serve, tokenizer, monkeypatch, debug_logs):
    monkeypatch.setenv("TEAM_LLM_KEY", "sk-very-secret-42")
    seen = []

    async def checks(request, reply):
        seen.append(request.headers.get("authorization"))
        if request.headers.get("authorization") != "Bearer sk-very-secret-42":
            await reply.json(401, {"error": {"message": "invalid api key"}})
            return
        if await openai_models(request, reply):
            return
        await reply.json(500, {"error": {"message": "boom"}})

    server = await serve(checks)
    backend = await connected(server.url, tokenizer, api_key_env="TEAM_LLM_KEY")
    try:
        with pytest.raises(BackendError) as caught:
            await texts(backend)
    finally:
        await backend.close()
    assert seen == ["Bearer sk-very-secret-42"] * 2
    assert "sk-very-secret" not in str(caught.value)
    assert debug_logs.records, "debug logging was captured"
    assert "sk-very-secret" not in debug_logs.text


async def test_missing_or_refused_api_key(serve, tokenizer, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(BackendError, match="apiKeyEnv names the environment variable NO_SUCH_KEY_VAR"):
        await connected("http://127.0.0.1:9", tokenizer, api_key_env="NO_SUCH_KEY_VAR")

    async def refuses(request, reply):
        await reply.json(401, {"error": {"message": "invalid api key"}})

    server = await serve(refuses)
    monkeypatch.setenv("WRONG_KEY", "nope-123")
    with pytest.raises(BackendError, match=r"refused the API key from \$WRONG_KEY \(HTTP 401\)"):
        await connected(server.url, tokenizer, api_key_env="WRONG_KEY")
    with pytest.raises(BackendError, match="wants an API key"):
        await connected(server.url, tokenizer)


@pytest.mark.parametrize("url, warned", [
    ("http://10.1.2.3:8000", True), ("http://inference.example.com", True),
    ("http://127.0.0.1:8000", False), ("http://localhost:8000", False), ("http://[::1]:8000", False),
    ("https://inference.example.com", False), ("unix:///run/model.sock", False),
])
def test_plain_http_to_another_host_warns(url, warned, caplog):
    remote = Remote(options(url))
    _ = remote.client
    assert any("plain HTTP" in r.getMessage() for r in caplog.records) == warned


@pytest.mark.parametrize("url", ["ftp://x", "unix://relative.sock", "localhost:8000", ""])
def test_bad_urls(url):
    with pytest.raises(BackendError):
        Remote(options(url))


def test_custom_ca_path_that_cannot_be_read(tmp_path):
    remote = Remote(options("https://inference.example.com", ca_cert_path=str(tmp_path / "missing.pem")))
    with pytest.raises(BackendError, match="cannot read the CA certificate"):
        _ = remote.client


async def test_llamacpp_infill_sends_parts_and_snippets(serve, tokenizer):
    async def infill(request, reply):
        if await openai_models(request, reply):
            return
        await reply.start_stream()
        for piece in ("return", " a + b"):
            await reply.chunk(sse({"content": piece, "stop": False, "id_slot": 0, "multimodal": False, "index": 0}))
        await reply.chunk(sse({"content": "", "stop": True, "stop_type": "eos", "tokens_predicted": 3,
                               "timings": {"predicted_n": 3}}))
        await reply.end_stream()

    server = await serve(infill)
    backend = LlamaCppBackend(options(server.url), tokenizer)
    await backend.load(lambda message, pct: None)
    parts = InfillParts("def add(a, b):\n    ", "\n", (("util.py", "# Path: util.py\n# def two(): ...\n"),))
    request = GenerationRequest(REQUEST.prompt_ids, 8, 0.0, tokenizer.stop_ids(), infill=parts)
    try:
        chunks = [c async for c in backend.stream(request, CancelToken())]
    finally:
        await backend.close()
    assert "".join(c.text for c in chunks) == "return a + b"
    assert chunks[-1].stop_reason == "eot" and chunks[-1].tokens == 3
    body = server.requests[-1].json
    assert server.requests[-1].path == "/infill"
    assert body["input_prefix"] == "def add(a, b):\n    " and body["input_suffix"] == "\n"
    assert body["input_extra"] == [{"filename": "util.py", "text": "# Path: util.py\n# def two(): ...\n"}]
    assert body["n_predict"] == 8 and body["stream"] is True


def test_error_bodies_are_summarised():
    from code_llama_ls.backends.http import error_detail

    assert error_detail(json.dumps({"error": {"message": "m", "code": 400}}).encode()) == "m"
    assert error_detail(b'{"error": "model not found"}') == "model not found"
    assert error_detail(b"Not Found") == "Not Found"
    assert error_detail(b"line one\ndef secret(): pass\n") == ""


async def test_ollama_without_the_model(serve, tokenizer):
    from code_llama_ls.backends.ollama_backend import OllamaBackend

    async def tags(request, reply):
        await reply.json(200, {"models": [{"name": "llama3.2:latest"}]})

    server = await serve(tags)
    backend = OllamaBackend(options(server.url, model="codellama:7b-code"), tokenizer)
    with pytest.raises(BackendError, match=r"has no model 'codellama:7b-code'.*ollama pull codellama:7b-code"):
        await backend.load(lambda message, pct: None)
    await backend.close()


async def test_ollama_chat_for_instruct_requests(serve, tokenizer):
    from code_llama_ls.backends.ollama_backend import OllamaBackend

    async def chat(request, reply):
        if request.path == "/api/tags":
            await reply.json(200, {"models": [{"name": "codellama:7b-instruct"}]})
            return
        await reply.start_stream("application/x-ndjson")
        for piece in ("Adds", " two"):
            await reply.chunk(json.dumps({"model": "codellama:7b-instruct", "message": {"role": "assistant",
                                          "content": piece}, "done": False}) + "\n")
        await reply.chunk(json.dumps({"model": "codellama:7b-instruct", "message": {"role": "assistant", "content": ""},
                                      "done": True, "done_reason": "length", "eval_count": 2}) + "\n")
        await reply.end_stream()

    server = await serve(chat)
    backend = OllamaBackend(options(server.url, model="codellama:7b-instruct", instruct_endpoint="chat"), tokenizer)
    await backend.load(lambda message, pct: None)
    request = GenerationRequest([1, 2], 2, 0.0, frozenset({2}), messages=(("user", "Explain."),))
    try:
        chunks = [c async for c in backend.stream(request, CancelToken())]
    finally:
        await backend.close()
    assert "".join(c.text for c in chunks) == "Adds two"
    assert chunks[-1].stop_reason == "max_tokens" and chunks[-1].tokens == 2
    assert server.requests[-1].path == "/api/chat"
    assert server.requests[-1].json["messages"] == [{"role": "user", "content": "Explain."}]
