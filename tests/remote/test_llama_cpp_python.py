"""llama-cpp-python's ``python -m llama_cpp.server`` on the tiny GGUF: what it can and cannot do
exactly. It refuses token-id prompts, so the prompt goes as text (``promptFormat: text``); it parses control pieces in text (``▁<PRE>`` → 32007), but reads every run of text after a
control token with SentencePiece's dummy prefix, which Code Llama's prompt does not have after
``▁<SUF>`` — no text renders the in-process ids exactly."""

from __future__ import annotations

import re

import httpx
import pytest
from remote_servers import require
from recording_proxy import RecordingProxy

from code_llama_ls.backends.remote_prompt import control_ids, piece_text, prompt_text
from benchmarks import tiny_model
from benchmarks.lsp_window import Window, end_of
from benchmarks.tiny_model import KNOWN_EXAMPLES
from code_llama_ls.prompts.fim import assemble
from code_llama_ls.prompts.tokenization import ModelTokenizer

ADD = KNOWN_EXAMPLES[0]


def dummy_prefix_on_every_run(tokenizer: ModelTokenizer, text: str) -> list[int]:
    """How llama.cpp reads a text prompt: <s>, control pieces as their ids, and each run of text
    between them encoded with SentencePiece's dummy prefix (``enc``), wherever it stands."""
    pieces = {piece_text(tokenizer, token): token for token in control_ids(tokenizer)}
    ids = [tokenizer.special.bos]
    for part in re.split("(" + "|".join(map(re.escape, pieces)) + ")", text):
        if part in pieces:
            ids.append(pieces[part])
        elif part:
            ids += tokenizer.encode(part)
    return ids


@pytest.fixture(scope="module")
def tokenizer(trained_model) -> ModelTokenizer:
    return ModelTokenizer.from_pretrained(str(trained_model), local_files_only=True)


def test_text_prompts_are_read_with_a_dummy_prefix_after_every_control_token(llama_cpp_python_server, tokenizer):
    require(tiny_model.fixture_tokenizer_dir() is not None,
            "needs the Code Llama tokenizer replica (../shared/fixtures): with the fallback tokenizer the GGUF has "
            "no SentencePiece scores and llama.cpp's tokenization of text differs for that reason too")
    for example in KNOWN_EXAMPLES:
        for mode in ("psm", "spm"):
            ids = assemble(tokenizer, example.prefix, example.suffix, mode)
            text = prompt_text(tokenizer, ids)
            read = httpx.post(f"{llama_cpp_python_server}/extras/tokenize", json={"input": text}, timeout=30).json()
            assert read["tokens"] == dummy_prefix_on_every_run(tokenizer, text), (mode, example.middle)
            assert read["tokens"] != ids, "a run after ▁<SUF> or ▁<MID> gains a ▁ the reference prompt lacks"


def test_token_id_prompts_are_refused(llama_cpp_python_server, tokenizer):
    """422 from FastAPI's validation; 500 where llama-cpp-python's own error handler wraps that
    (FastAPI 0.165 here); ``promptFormat: auto`` reads both as a refusal of token ids."""
    refused = httpx.post(f"{llama_cpp_python_server}/v1/completions", timeout=30, json={
        "prompt": assemble(tokenizer, ADD.prefix, ADD.suffix, "psm"), "max_tokens": 8})
    assert refused.status_code in (422, 500)
    assert "Input should be a valid string" in refused.text


async def test_inline_completion_on_the_text_path(llama_cpp_python_server, trained_model, tokenizer):
    proxy = RecordingProxy(llama_cpp_python_server)
    window = Window({"model": str(trained_model), "localFilesOnly": True, "backend": "openai",
                     "url": await proxy.start(), "promptFormat": "auto", "contextEnabled": False, "debounceMs": 0,
                     "maxNewTokens": 32})
    try:
        assert (await window.start())["state"] == "ready"
        window.open("file:///w/add.py", ADD.prefix + ADD.suffix)
        shown = await window.complete("file:///w/add.py", *end_of(ADD.prefix))
        ids_tried, body = proxy.bodies("/v1/completions")  # auto: ids first, refused, then text
        assert ids_tried["prompt"] == assemble(tokenizer, ADD.prefix, ADD.suffix, "psm")
        assert body["prompt"] == prompt_text(tokenizer, assemble(tokenizer, ADD.prefix, ADD.suffix, "psm"))
        # Inexact (see above), yet on this prompt the tiny model still gives its trained answer.
        assert shown == [ADD.middle]
    finally:
        await window.stop()
        await proxy.stop()
