"""The real pretrained model through a real inference server: SmolLM2's GGUF file served by
llama.cpp's ``llama-server`` (the build the other remote tests use), reached by the language
server with ``backend: openai``. The language server reads the tokenizer from the same file, so
the prompt it sends (recorded by a loopback proxy) is exactly the in-process left-to-right ids."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from recording_proxy import RecordingProxy
from remote_servers import free_port, serving

from benchmarks import llama_cpp
from benchmarks.lsp_window import Window, end_of
from code_llama_ls.prompts.at_cursor import build_prompt
from code_llama_ls.documents import Document
from code_llama_ls.runtime.manager import detect_capabilities
from code_llama_ls.settings import Settings

MAX_NEW_TOKENS = 32
MAX_CONTEXT = 2048
BEFORE = "import json\n\n\ndef load(path):\n    with open(path) as handle:\n        return json.load("
AFTER = ")\n"


@pytest.fixture(scope="module")
def smollm2_server(llama_server_binary, smollm2_gguf, tmp_path_factory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server-smollm2") / "llama-server.log"
    with serving(llama_cpp.llama_server_command(smollm2_gguf, port, parallel=1), port, log) as url:
        yield url


async def test_llama_server_answers_from_the_in_process_ids(smollm2_server, smollm2_gguf, smollm2_tokenizer, tmp_path):
    proxy = RecordingProxy(smollm2_server)
    window = Window({"model": str(smollm2_gguf), "backend": "openai", "url": await proxy.start(),
                     "promptFormat": "token_ids", "maxNewTokens": MAX_NEW_TOKENS, "maxContextTokens": MAX_CONTEXT,
                     "debounceMs": 0, "contextEnabled": False})
    uri = (tmp_path / "load.py").as_uri()
    try:
        status = await window.start()
        assert status["state"] == "ready" and "left-to-right" in status["message"], status
        window.open(uri, BEFORE + AFTER)
        shown = await window.complete(uri, *end_of(BEFORE))
        assert shown and shown[0].strip(), shown

        settings = Settings(model=str(smollm2_gguf), max_new_tokens=MAX_NEW_TOKENS, max_context_tokens=MAX_CONTEXT,
                            context_enabled=False)
        prompt = build_prompt(Document(uri, BEFORE + AFTER, 1), len(BEFORE), smollm2_tokenizer, settings, "cpu",
                              capabilities=detect_capabilities(settings, smollm2_tokenizer))
        assert prompt.mode == "l2r"
        sent = proxy.bodies("/v1/completions")[-1]
        assert sent["prompt"] == prompt.ids
        assert sent["max_tokens"] == MAX_NEW_TOKENS and sent["temperature"] == 0
    finally:
        await window.stop()
        await proxy.stop()


async def test_the_in_process_llama_cpp_engine_decodes_as_llama_server(
        smollm2_server, smollm2_gguf, smollm2_tokenizer, llama_cpp_bindings):
    """The same GGUF, the same prompt ids, the same ``libllama``: the in-process engine's greedy
    tokens are llama-server's (prefill in batches, KV reuse and the decode loop are ours)."""
    import httpx

    from code_llama_ls.backends.base import CancelToken, GenerationRequest
    from code_llama_ls.backends.llama_cpp_engine import LlamaCppEngine

    source = Path(textwrap.__file__).read_text()
    settings = Settings(model=str(smollm2_gguf), max_new_tokens=48, max_context_tokens=MAX_CONTEXT,
                        context_enabled=False)
    engine = LlamaCppEngine(str(smollm2_gguf), smollm2_tokenizer, threads=2, context_tokens=MAX_CONTEXT)
    await engine.load(lambda message, percentage: None)
    try:
        for cut in (source.index("    def _munge_whitespace"), source.index("def dedent(") + 40):
            document = Document("file:///textwrap.py", source, 1)
            prompt = build_prompt(document, cut, smollm2_tokenizer, settings, "cpu",
                                  capabilities=detect_capabilities(settings, smollm2_tokenizer))
            assert len(prompt.ids) > 600  # more than one batch of 512 tokens
            async for chunk in engine.stream(GenerationRequest(prompt.ids, 48, stop_ids=smollm2_tokenizer.stop_ids()),
                                             CancelToken()):
                final = chunk
            ours = final.ids
            async with httpx.AsyncClient(timeout=120) as client:
                answer = (await client.post(f"{smollm2_server}/completion", json={
                    "prompt": prompt.ids, "n_predict": 48, "temperature": 0, "return_tokens": True,
                    "cache_prompt": False})).json()
            theirs = answer["tokens"]
            stops = [i for i, token in enumerate(theirs) if token in smollm2_tokenizer.stop_ids()]
            theirs = theirs[:stops[0]] if stops else theirs
            assert len(ours) >= 8
            assert ours == theirs, (smollm2_tokenizer.decode_infilling(ours), smollm2_tokenizer.decode_infilling(theirs))
    finally:
        await engine.close()
