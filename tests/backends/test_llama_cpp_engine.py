"""The in-process llama.cpp engine (llama-cpp-python's bindings from the pinned sdist, on the
``libllama`` of the llama-server build the remote tests use) on the trained tiny model as GGUF:
the known completions through the real language server, the transformers engine's prompt ids and
answers, cancellation within one token, and a typed-on prompt that evaluates only its new tokens."""

from __future__ import annotations

import asyncio
import time

import pytest

from code_llama_ls.backends import in_process_engine
from code_llama_ls.backends.base import BackendError, CancelToken, Chunk, GenerationRequest
from code_llama_ls.backends.llama_cpp_engine import LlamaCppEngine
from code_llama_ls.backends.prefix_cache import common_prefix
from code_llama_ls.backends.transformers_backend import TransformersBackend
from benchmarks import llama_cpp, tiny_model
from benchmarks.lsp_window import Window, end_of
from benchmarks.tiny_model import INSTRUCT_EXAMPLES, INSTRUCT_SOURCE, KNOWN_EXAMPLES
from code_llama_ls.prompts.at_cursor import build_prompt
from code_llama_ls.completion.shape import shape_suggestion
from code_llama_ls.documents import Document
from code_llama_ls.prompts.tokenization import ModelTokenizer
from code_llama_ls.settings import Settings

EXPLAIN = next(ex for ex in INSTRUCT_EXAMPLES if ex.kind == "explain")
MAX_NEW_TOKENS = 32


def no_progress(message: str, percentage: int | None) -> None:
    pass


async def run(backend, request: GenerationRequest, cancel: CancelToken | None = None) -> tuple[str, Chunk]:
    text, last = "", None
    async for chunk in backend.stream(request, cancel or CancelToken()):
        text += chunk.text
        last = chunk
    return text, last


@pytest.fixture(scope="module")
def tokenizer(trained_model) -> ModelTokenizer:
    return ModelTokenizer.from_pretrained(str(trained_model), local_files_only=True)


@pytest.fixture
async def engine(llama_cpp_bindings, tiny_gguf, tokenizer):
    backend = LlamaCppEngine(str(tiny_gguf), tokenizer, threads=2)
    await backend.load(no_progress)
    yield backend
    await backend.close()


def example_prompts(tokenizer: ModelTokenizer) -> list[list[int]]:
    settings = Settings(context_enabled=False, max_new_tokens=MAX_NEW_TOKENS)
    prompts = []
    for example in KNOWN_EXAMPLES:
        document = Document("file:///x.py", example.prefix + example.suffix, 1)
        for mode in ("psm", "spm"):
            prompts.append(build_prompt(document, len(example.prefix), tokenizer, settings.model_copy(
                update={"fim_mode": mode}), "cpu").ids)
    return prompts


@pytest.mark.skipif(tiny_model.fixture_tokenizer_dir() is None, reason="needs the Code Llama tokenizer replica "
                    "(../shared/fixtures/codellama-tokenizer): on the fallback tokenizer's 4,004-token vocabulary the "
                    "server detects no room for infilling and prompts left to right")
async def test_known_completions_and_explain_end_to_end_through_the_language_server(
        llama_cpp_bindings, tiny_gguf, trained_model, tmp_path):
    (tmp_path / EXPLAIN.file).write_text(INSTRUCT_SOURCE)
    window = Window({"model": str(tiny_gguf), "tokenizer": str(trained_model), "engine": "llama.cpp",
                     "localFilesOnly": True, "contextEnabled": False, "debounceMs": 0, "maxNewTokens": MAX_NEW_TOKENS,
                     "instructMaxNewTokens": 64}, env=llama_cpp.python_server_env(), root_uri=tmp_path.as_uri())
    try:
        status = await window.start()
        assert status["state"] == "ready" and "on llama.cpp" in status["message"], status
        assert "fill-in-the-middle" in status["message"], status
        for index, example in enumerate(KNOWN_EXAMPLES):
            uri = (tmp_path / f"example{index}.py").as_uri()
            window.open(uri, example.prefix + example.suffix)
            shown = await window.complete(uri, *end_of(example.prefix))
            assert shown == [shape_suggestion(example.prefix, example.suffix, "python", example.middle)[0]], example
        uri = (tmp_path / EXPLAIN.file).as_uri()
        window.open(uri, INSTRUCT_SOURCE)
        result = await window.request("codeLlama/explain", {
            "textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 0},
                                                     "end": {"line": 2, "character": 0}}})
        assert (result if isinstance(result, dict) else result._asdict())["markdown"] == EXPLAIN.answer
    finally:
        await window.stop()


async def test_prompt_ids_and_answers_equal_the_transformers_engines(engine, trained_model, tokenizer):
    reference = TransformersBackend(str(trained_model), tokenizer, device="cpu", local_files_only=True)
    await reference.load(no_progress)
    try:
        for ids in example_prompts(tokenizer):
            request = GenerationRequest(ids, MAX_NEW_TOKENS, stop_ids=tokenizer.stop_ids(), kv_cache_bytes=0)
            ours, ours_last = await run(engine, request)
            theirs, theirs_last = await run(reference, request)
            assert ours == theirs and ours_last.ids == theirs_last.ids
            # What llama.cpp holds is exactly the prompt ids, then the answer's tokens, each fed to
            # read the next one's logits (the stop token is never fed).
            assert ours_last.stop_reason == "eot"
            assert list(engine.held_tokens) == ids + ours_last.ids
            assert ours_last.evaluated_tokens == len(ids) + len(ours_last.ids)
        assert ours in {example.middle for example in KNOWN_EXAMPLES}
    finally:
        await reference.close()


async def test_a_typed_on_prompt_evaluates_only_its_new_tokens(engine, tokenizer):
    settings = Settings(context_enabled=False, fim_mode="spm")
    example = KNOWN_EXAMPLES[1]
    before = build_prompt(Document("file:///c.py", example.prefix + example.suffix, 1), len(example.prefix),
                          tokenizer, settings, "cpu").ids
    typed = example.prefix + "sel"
    after = build_prompt(Document("file:///c.py", typed + example.suffix, 2), len(typed), tokenizer, settings,
                         "cpu").ids
    shared = common_prefix(before, after)
    assert len(after) - shared <= 3 < shared  # SPM: typing appends to the prompt

    _, first = await run(engine, GenerationRequest(before, 1, stop_ids=tokenizer.stop_ids()))
    assert (first.reused_tokens, first.evaluated_tokens) == (0, len(before))
    total = engine.evaluated_tokens
    _, second = await run(engine, GenerationRequest(after, 1, stop_ids=tokenizer.stop_ids()))
    assert second.reused_tokens == shared
    assert second.evaluated_tokens == engine.evaluated_tokens - total == len(after) - shared
    assert engine.cache_stats()["kv"]["size"] == len(after)


async def test_cancel_stops_generation_within_one_token(llama_cpp_bindings, random_model, tokenizer):
    gguf = llama_cpp.tiny_model_gguf(random_model)
    engine = LlamaCppEngine(str(gguf), tokenizer, threads=2)
    await engine.load(no_progress)
    try:
        cancel = CancelToken()
        request = GenerationRequest(tokenizer.encode("def f(x):\n"), 3000, stop_ids=frozenset())
        chunks = 0
        async for chunk in engine.stream(request, cancel):
            chunks += 1
            if chunks == 5:
                at_cancel = engine.evaluated_tokens  # the worker's progress when the cancel is set
                cancel.cancel()
            last = chunk
        assert last.stop_reason == "cancelled"
        assert engine.evaluated_tokens - at_cancel <= 1, "more than the one step in flight ran after the cancel"
        assert last.tokens < 3000
    finally:
        await engine.close()


async def test_a_cancelled_prompt_keeps_what_it_evaluated(engine, tokenizer):
    """Cancel before the prompt is read: nothing is evaluated, and the next request is served whole."""
    ids = example_prompts(tokenizer)[0]
    cancel = CancelToken()
    cancel.cancel()
    _, last = await run(engine, GenerationRequest(ids, 8, stop_ids=tokenizer.stop_ids()), cancel)
    assert (last.stop_reason, last.tokens, last.evaluated_tokens) == ("cancelled", 0, 0)
    text, last = await run(engine, GenerationRequest(ids, MAX_NEW_TOKENS, stop_ids=tokenizer.stop_ids()))
    assert text == KNOWN_EXAMPLES[0].middle and last.stop_reason == "eot"


async def test_healing_spells_the_backed_off_text_first(engine, tokenizer):
    example = KNOWN_EXAMPLES[0]  # "return a + b": back off "return" and let the model spell it
    ids = example_prompts(tokenizer)[0]
    text, _ = await run(engine, GenerationRequest(ids, MAX_NEW_TOKENS, stop_ids=tokenizer.stop_ids(),
                                                  heal_text="ret"))
    assert text.startswith("ret")
    assert text == example.middle  # the constrained first token is the model's own "return" piece


async def test_prompt_lookup_drafts_leave_greedy_output_unchanged(engine, tokenizer):
    for ids in example_prompts(tokenizer):
        plain, _ = await run(engine, GenerationRequest(ids, MAX_NEW_TOKENS, stop_ids=tokenizer.stop_ids()))
        drafted, _ = await run(engine, GenerationRequest(ids, MAX_NEW_TOKENS, stop_ids=tokenizer.stop_ids(),
                                                         prompt_lookup_tokens=4))
        assert drafted == plain


async def test_a_prompt_longer_than_the_context_is_refused(llama_cpp_bindings, tiny_gguf, tokenizer):
    engine = LlamaCppEngine(str(tiny_gguf), tokenizer, threads=1, context_tokens=64)
    await engine.load(no_progress)
    try:
        size = engine.status().extra["contextTokens"]  # llama.cpp may round it up
        assert 64 <= size < 1024
        with pytest.raises(BackendError, match=f"does not fit the context of {size}"):
            await run(engine, GenerationRequest([tokenizer.special.bos] * size, 4))
        text, _ = await run(engine, GenerationRequest(example_prompts(tokenizer)[0], MAX_NEW_TOKENS,
                                                      stop_ids=tokenizer.stop_ids()))
        assert text == KNOWN_EXAMPLES[0].middle  # a prompt that fits is served after the refusal
    finally:
        await engine.close()


async def test_engine_auto_and_its_errors(llama_cpp_bindings, tiny_gguf, trained_model, tokenizer):
    assert in_process_engine("auto", str(tiny_gguf)) == "llama.cpp"
    assert in_process_engine("auto", str(trained_model)) == "transformers"
    assert in_process_engine("transformers", str(tiny_gguf)) == "transformers"
    engine = LlamaCppEngine(str(trained_model), tokenizer)
    with pytest.raises(BackendError, match="runs .gguf models"):
        await engine.load(no_progress)
    assert engine.status().state == "error"
    await engine.close()


async def test_the_event_loop_runs_while_the_engine_decodes(engine, tokenizer):
    """llama_decode releases the GIL: a loop tick during a long generation stays short."""
    request = GenerationRequest(tokenizer.encode("def f(x):\n") * 40, 400, stop_ids=frozenset())
    task = asyncio.ensure_future(run(engine, request))
    worst = 0.0
    while not task.done():
        before = time.perf_counter()
        await asyncio.sleep(0.005)
        worst = max(worst, time.perf_counter() - before - 0.005)
    await task
    assert worst < 0.1, f"the event loop stalled {worst * 1000:.0f} ms"


async def test_cancel_aborts_a_long_prompt_inside_its_batch(llama_cpp_bindings, smollm2_gguf, smollm2_tokenizer):
    """Through llama.cpp's abort callback: 50 ms into a 2,000-token prompt (a batch of 512 takes
    far longer on a CPU), the cancel ends the first batch itself, and the engine keeps serving."""
    engine = LlamaCppEngine(str(smollm2_gguf), smollm2_tokenizer, threads=2)
    await engine.load(no_progress)
    try:
        ids = smollm2_tokenizer.encode("def f(x):\n    return x + 1\n" * 200)[:2000]
        cancel = CancelToken()
        asyncio.get_running_loop().call_later(0.05, cancel.cancel)
        _, last = await run(engine, GenerationRequest(ids, 8, stop_ids=smollm2_tokenizer.stop_ids()), cancel)
        assert last.stop_reason == "cancelled" and last.tokens == 0
        assert engine.held_tokens == () and last.evaluated_tokens == 0, "the first batch ran to its end"
        text, last = await run(engine, GenerationRequest(ids[:40], 4, stop_ids=smollm2_tokenizer.stop_ids()))
        assert last.stop_reason in ("max_tokens", "eot") and last.evaluated_tokens >= 40
    finally:
        await engine.close()
