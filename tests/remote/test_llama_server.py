"""llama.cpp's own ``llama-server`` (built from the pinned llama-cpp-python sdist) serving the
trained tiny model as GGUF, used by the real language server over stdio with ``backend: openai``:
the prompt reaches the server as exactly the in-process token ids (recorded on the way by a
loopback proxy), the completion equals the in-process backend's on the same weights, and explain
works end to end."""

from __future__ import annotations

import httpx
from recording_proxy import RecordingProxy

from code_llama_ls.backends.base import CancelToken, GenerationRequest
from code_llama_ls.backends.transformers_backend import TransformersBackend
from benchmarks.lsp_window import Window, end_of
from benchmarks.tiny_model import INSTRUCT_EXAMPLES, INSTRUCT_SOURCE, KNOWN_EXAMPLES
from code_llama_ls.completion.cache import heal
from code_llama_ls.prompts.tokenization import piece_texts
from code_llama_ls.prompts.at_cursor import build_prompt
from code_llama_ls.completion.shape import shape_suggestion
from code_llama_ls.documents import Document
from code_llama_ls.prompts.tokenization import ModelTokenizer
from code_llama_ls.settings import Settings

EXPLAIN = next(ex for ex in INSTRUCT_EXAMPLES if ex.kind == "explain")
MAX_NEW_TOKENS = 32


def lsp_options(model, url: str) -> dict:
    return {"model": str(model), "localFilesOnly": True, "backend": "openai", "url": url,
            "promptFormat": "token_ids", "contextEnabled": False, "debounceMs": 0, "maxNewTokens": MAX_NEW_TOKENS,
            "instructMaxNewTokens": 64}


async def in_process(backend: TransformersBackend, ids: list[int], stop_ids) -> str:
    text = ""
    async for chunk in backend.stream(GenerationRequest(ids, MAX_NEW_TOKENS, 0.0, stop_ids), CancelToken()):
        text += chunk.text
    return text


async def test_inline_completion_sends_the_in_process_ids_and_gets_the_in_process_completion(
        llama_server, trained_model, tmp_path):
    tokenizer = ModelTokenizer.from_pretrained(str(trained_model), local_files_only=True)
    settings = Settings(model=str(trained_model), local_files_only=True, context_enabled=False,
                        max_new_tokens=MAX_NEW_TOKENS)
    reference = TransformersBackend(str(trained_model), tokenizer, device="cpu", local_files_only=True)
    await reference.load(lambda message, percentage: None)
    proxy = RecordingProxy(llama_server)
    window = Window(lsp_options(trained_model, await proxy.start()))
    try:
        assert (await window.start())["state"] == "ready"
        for index, example in enumerate(KNOWN_EXAMPLES):
            uri = (tmp_path / f"example{index}.py").as_uri()
            window.open(uri, example.prefix + example.suffix)
            shown = await window.complete(uri, *end_of(example.prefix))

            # What the in-process server would give its backend for the same request.
            prompt = build_prompt(Document(uri, example.prefix + example.suffix, 1), len(example.prefix), tokenizer,
                                  settings, "cpu")
            assert heal(prompt, piece_texts(tokenizer)) == (prompt.ids, ""), "no healing on these prompts"
            sent = proxy.bodies("/v1/completions")[-1]
            assert sent["prompt"] == prompt.ids, example.middle
            assert sent["temperature"] == 0 and sent["max_tokens"] == MAX_NEW_TOKENS and sent["stream"] is True

            expected = await in_process(reference, prompt.ids, tokenizer.stop_ids())
            assert expected == example.middle  # the trained answer: peaked logits, no ties
            # The same request, whole (the language server stops reading after a line it will not
            # show): llama-server's greedy completion is the in-process one, ended by ▁<EOT>.
            async with httpx.AsyncClient(timeout=30) as client:
                direct = (await client.post(f"{llama_server}/v1/completions", json={**sent, "stream": False})).json()
            assert direct["choices"][0]["text"] == expected
            assert direct["choices"][0]["finish_reason"] == "stop"
            # Shown: the answer shaped as in-process (the one entry point the server calls).
            assert shown == [shape_suggestion(example.prefix, example.suffix, "python", expected)[0]]
        assert len(proxy.bodies("/v1/completions")) == len(KNOWN_EXAMPLES)
    finally:
        await window.stop()
        await proxy.stop()
        await reference.close()


async def test_explain_end_to_end_through_llama_server(llama_server, trained_model, tmp_path):
    proxy = RecordingProxy(llama_server)
    (tmp_path / EXPLAIN.file).write_text(INSTRUCT_SOURCE)
    window = Window(lsp_options(trained_model, await proxy.start()), root_uri=tmp_path.as_uri())
    try:
        assert (await window.start())["state"] == "ready"
        uri = (tmp_path / EXPLAIN.file).as_uri()
        window.open(uri, INSTRUCT_SOURCE)
        result = await window.request("codeLlama/explain", {
            "textDocument": {"uri": uri},
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 0}}})
        result = result if isinstance(result, dict) else result._asdict()
        assert result["markdown"] == EXPLAIN.answer
        (body,) = proxy.bodies("/v1/completions")
        assert all(type(token) is int for token in body["prompt"])
    finally:
        await window.stop()
        await proxy.stop()



async def test_llamacpp_backend_infills_through_llama_server(llama_server, trained_model, tmp_path):
    """``backend: llamacpp``: ``/infill`` with the document's texts (llama.cpp lays out and tokenizes
    the prompt itself, so it is not token-exact); the answers come back through the language server."""
    proxy = RecordingProxy(llama_server)
    window = Window({**lsp_options(trained_model, await proxy.start()), "backend": "llamacpp"})
    try:
        assert (await window.start())["state"] == "ready"
        shown = []
        for index, example in enumerate(KNOWN_EXAMPLES):
            uri = (tmp_path / f"example{index}.py").as_uri()
            window.open(uri, example.prefix + example.suffix)
            shown.append(await window.complete(uri, *end_of(example.prefix)))
            body = proxy.bodies("/infill")[-1]
            assert (body["input_prefix"], body["input_suffix"]) == (example.prefix, example.suffix)
        assert shown[0] == [KNOWN_EXAMPLES[0].middle]
        assert not [m for m in window.messages if "inference server" in m], window.messages
    finally:
        await window.stop()
        await proxy.stop()
