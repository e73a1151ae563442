"""Recorded vLLM, TGI and Ollama responses (see recorded/README.md for their sources), replayed by a
loopback server: the parsed text, the stop reasons, and the exact request bodies we send."""

from __future__ import annotations

from pathlib import Path

import pytest
from backend_helpers import options
from loopback import openai_models

from code_llama_ls.backends.base import CancelToken, GenerationRequest
from code_llama_ls.backends.ollama_backend import OllamaBackend
from code_llama_ls.backends.openai_backend import OpenAICompletionsBackend
from code_llama_ls.backends.remote_prompt import prompt_text
from code_llama_ls.completion.engine import CompletionEngine
from code_llama_ls.runtime.manager import Runtime
from code_llama_ls.documents import Document
from code_llama_ls.prompts.fim import Budget, build_infill_prompt
from code_llama_ls.settings import Settings

RECORDED = Path(__file__).parent / "recorded"
MODEL = "codellama/CodeLlama-7b-hf"
BEFORE = "def add(a, b):\n"
AFTER = "\n\nprint(add(1, 2))\n"


def replay(name: str, content_type: str):
    body = (RECORDED / name).read_bytes()

    async def handler(request, reply):
        if await openai_models(request, reply, MODEL):
            return
        if request.path == "/api/tags":
            await reply.json(200, {"models": [{"name": f"{MODEL}:latest", "model": f"{MODEL}:latest"}]})
            return
        await reply.start_stream(content_type)
        # Replay in uneven pieces: a frame may be split anywhere on the wire.
        for start in range(0, len(body), 37):
            await reply.chunk(body[start:start + 37])
        await reply.end_stream()

    return handler


def fim_ids(tokenizer, max_new_tokens: int) -> list[int]:
    """The in-process prompt ids for BEFORE|AFTER."""
    return build_infill_prompt(tokenizer, BEFORE, AFTER, Budget(4096, max_new_tokens)).ids


async def run(backend, request):
    await backend.load(lambda message, pct: None)
    try:
        chunks = [c async for c in backend.stream(request, CancelToken())]
    finally:
        await backend.close()
    return "".join(c.text for c in chunks), chunks[-1]


async def test_vllm_stream_cut_by_max_tokens(serve, tokenizer):
    server = await serve(replay("vllm_completions_length.sse", "text/event-stream"))
    ids = fim_ids(tokenizer, 5)
    text, last = await run(OpenAICompletionsBackend(options(server.url, model=MODEL), tokenizer),
                           GenerationRequest(ids, 5, 0.0, tokenizer.stop_ids()))
    assert text == " It’s fast.\n again"
    assert last.stop_reason == "max_tokens" and last.tokens == 5
    assert server.requests[-1].path == "/v1/completions"
    assert server.requests[-1].json == {
        "model": MODEL, "prompt": ids, "max_tokens": 5, "temperature": 0.0, "stream": True,
        "stream_options": {"include_usage": True}, "stop": [" <EOT>", "</s>", "<EOT>"],
        "stop_token_ids": sorted(tokenizer.stop_ids()),
    }


async def test_vllm_stream_stopped_by_the_eot_token(serve, tokenizer):
    server = await serve(replay("vllm_completions_stop_token.sse", "text/event-stream"))
    ids = fim_ids(tokenizer, 16)
    text, last = await run(OpenAICompletionsBackend(options(server.url, model=MODEL), tokenizer),
                           GenerationRequest(ids, 16, 0.0, tokenizer.stop_ids()))
    assert text == "    return a + b"
    assert last.stop_reason == "eot" and last.tokens == 4
    assert server.requests[-1].json["prompt"] == ids


async def test_tgi_completions_stream_takes_text_prompts(serve, tokenizer):
    """TGI's /v1/completions takes strings only: its stream (no [DONE], finish_reason "") is read
    to the end of the body, and the prompt goes as text."""
    server = await serve(replay("tgi_completions_stream.sse", "text/event-stream"))
    ids = fim_ids(tokenizer, 10)
    text, last = await run(OpenAICompletionsBackend(options(server.url, model="tgi", prompt_format="text"), tokenizer),
                           GenerationRequest(ids, 10, 0.0, tokenizer.stop_ids()))
    assert text == "\n\n2. Sarah's Room: She"
    assert last.stop_reason == "max_tokens" and last.tokens == 10
    body = server.requests[-1].json
    assert body["prompt"] == prompt_text(tokenizer, ids) and body["max_tokens"] == 10


async def test_tgi_chat_stream_with_usage(serve, tokenizer):
    server = await serve(replay("tgi_chat_stream.sse", "text/event-stream"))
    messages = (("system", "You are an expert programmer."), ("user", "What is Deep Learning?"))
    backend = OpenAICompletionsBackend(options(server.url, model="tgi", instruct_endpoint="chat"), tokenizer)
    text, last = await run(backend, GenerationRequest([1, 2, 3], 10, 0.0, frozenset({tokenizer.special.eos}),
                                                      messages=messages))
    assert text == "**Deep Learning: An Overview**\n=====================================\n\n"
    assert last.stop_reason == "max_tokens" and last.tokens == 10
    assert server.requests[-1].path == "/v1/chat/completions"
    assert server.requests[-1].json == {
        "model": "tgi", "messages": [{"role": r, "content": c} for r, c in messages], "max_tokens": 10,
        "temperature": 0.0, "stream": True, "stream_options": {"include_usage": True}, "stop": ["</s>"],
    }


@pytest.mark.parametrize("name, expected, tokens", [
    ("ollama_generate_stream.ndjson", "The", 259),
    ("ollama_generate_codellama.ndjson", "\n  if a == 0:\n    return b\n  else:\n    return compute_gcd(b % a, a)\n\n"
     "def compute_lcm(a, b):\n  result = (a * b) / compute_gcd(a, b)\n", 63),
])
async def test_ollama_generate_raw(serve, tokenizer, name, expected, tokens):
    server = await serve(replay(name, "application/x-ndjson"))
    ids = fim_ids(tokenizer, 64)
    text, last = await run(OllamaBackend(options(server.url, model=MODEL), tokenizer),
                           GenerationRequest(ids, 64, 0.2, tokenizer.stop_ids()))
    assert text == expected
    assert last.stop_reason == "eot" and last.tokens == tokens
    assert server.requests[-1].path == "/api/generate"
    assert server.requests[-1].json == {
        "model": MODEL, "prompt": prompt_text(tokenizer, ids), "raw": True, "stream": True,
        "options": {"num_predict": 64, "temperature": 0.2, "stop": [" <EOT>", "</s>", "<EOT>"]},
    }


async def test_the_engine_sends_the_in_process_prompt_ids(serve, tokenizer):
    """Through the completion engine: the ids on the wire are build_infill_prompt's, and the
    recorded answer is what the engine shows."""
    server = await serve(replay("vllm_completions_stop_token.sse", "text/event-stream"))
    settings = Settings(model=MODEL, backend="openai", url=server.url, max_new_tokens=16, max_context_tokens=512,
                        context_enabled=False, fim_mode="psm")
    backend = OpenAICompletionsBackend(options(server.url, model=MODEL), tokenizer)
    await backend.load(lambda message, pct: None)
    runtime = Runtime(tokenizer, backend)

    async def get_runtime():
        return runtime

    engine = CompletionEngine(get_runtime, lambda: settings)
    document = Document("file:///w/add.py", BEFORE + AFTER, 1, "python")
    offset = len(BEFORE)
    try:
        completion = await engine.complete(document, offset)
    finally:
        await backend.close()
    expected = build_infill_prompt(tokenizer, BEFORE, AFTER, Budget(512, 16), "psm").ids
    assert server.requests[-1].json["prompt"] == expected
    assert server.requests[-1].json["max_tokens"] == 16
    assert completion is not None and completion.text == "    return a + b"


async def test_a_prefix_ending_inside_a_word_is_sent_unhealed(serve, tokenizer):
    """Token healing needs a constrained first token, which a remote server cannot do: the
    prompt goes as build_infill_prompt made it (not with its last word piece backed off)."""
    server = await serve(replay("vllm_completions_stop_token.sse", "text/event-stream"))
    settings = Settings(model=MODEL, backend="openai", url=server.url, max_new_tokens=16, max_context_tokens=512,
                        context_enabled=False, fim_mode="psm", token_healing=True)
    backend = OpenAICompletionsBackend(options(server.url, model=MODEL), tokenizer)
    await backend.load(lambda message, pct: None)
    runtime = Runtime(tokenizer, backend)

    async def get_runtime():
        return runtime

    before = BEFORE + "    ret"
    try:
        await CompletionEngine(get_runtime, lambda: settings).complete(
            Document("file:///w/add.py", before + AFTER, 1, "python"), len(before))
    finally:
        await backend.close()
    assert server.requests[-1].json["prompt"] == build_infill_prompt(tokenizer, before, AFTER, Budget(512, 16)).ids
