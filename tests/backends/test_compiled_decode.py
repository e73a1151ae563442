"""``compile: on`` for the transformers engine on the trained tiny model: eager generations are
served while the step compiles, and once it is ready the compiled decode gives eager's greedy
tokens — known completions, a prompt past the first attention window, a typed-on prompt that
reuses the static cache's prefix, healing, cancellation within one token — and reports what it
evaluated; a step that would have to compile again falls back to eager instead."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest
import pytest_asyncio

from code_llama_ls.backends.base import CancelToken, GenerationRequest
from code_llama_ls.backends.compiled_decode import (
    WINDOW_STEP,
    CompiledDecoder,
    compiles_by_default,
    decode_twin,
    windowed_static_cache,
)
from code_llama_ls.backends.prefix_cache import common_prefix
from code_llama_ls.backends.transformers_backend import TransformersBackend
from benchmarks.tiny_model import KNOWN_EXAMPLES
from code_llama_ls.prompts.at_cursor import build_prompt
from code_llama_ls.documents import Document
from code_llama_ls.prompts.tokenization import ModelTokenizer
from code_llama_ls.settings import Settings

MAX_NEW_TOKENS = 24
LOGIT_TOLERANCE = 1e-4  # float32: the compiled step and eager differ only by summation order
pytestmark = pytest.mark.asyncio(loop_scope="module")


async def run(backend, request: GenerationRequest, cancel: CancelToken | None = None):
    text, last = "", None
    async for chunk in backend.stream(request, cancel or CancelToken()):
        text += chunk.text
        last = chunk
    return text, last


def prompts(tokenizer: ModelTokenizer) -> list[list[int]]:
    out = []
    for example in KNOWN_EXAMPLES:
        document = Document("file:///x.py", example.prefix + example.suffix, 1)
        for mode in ("psm", "spm"):
            out.append(build_prompt(document, len(example.prefix), tokenizer,
                                    Settings(context_enabled=False, fim_mode=mode), "cpu").ids)
    return out


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engines(trained_model):
    """(eager, compiled) on the same weights; the compiled one's first request is taken while
    it still compiles."""
    tokenizer = ModelTokenizer.from_pretrained(str(trained_model), local_files_only=True)
    eager = TransformersBackend(str(trained_model), tokenizer, device="cpu", local_files_only=True, compile_mode="off")
    compiled = TransformersBackend(str(trained_model), tokenizer, device="cpu", local_files_only=True,
                                   compile_mode="on", context_tokens=512)
    await eager.load(lambda message, percentage: None)
    await compiled.load(lambda message, percentage: None)
    first = prompts(tokenizer)[0]
    started = time.perf_counter()
    text, _ = await run(compiled, GenerationRequest(first, MAX_NEW_TOKENS, stop_ids=tokenizer.stop_ids()))
    served_while_warming = (compiled.status().extra["compiledDecode"] == "warming" and text == KNOWN_EXAMPLES[0].middle
                            and time.perf_counter() - started < 5)
    assert await compiled.compiled_ready(600), compiled.status().message
    yield eager, compiled, tokenizer, served_while_warming
    await eager.close()
    await compiled.close()


async def test_suggestions_are_served_eagerly_while_the_step_compiles(engines):
    *_, served_while_warming = engines
    assert served_while_warming


async def test_compiled_greedy_tokens_equal_eager(engines):
    eager, compiled, tokenizer, _ = engines
    assert compiled.status().extra["compiledDecode"] == "ready"
    for ids in prompts(tokenizer):
        request = GenerationRequest(ids, MAX_NEW_TOKENS, stop_ids=tokenizer.stop_ids())
        (ours, ours_last), (theirs, theirs_last) = await run(compiled, request), await run(eager, request)
        assert ours_last.ids == theirs_last.ids and ours == theirs
    # Past the stop token too: the random-looking continuation after max tokens agrees step by step.
    request = GenerationRequest(prompts(tokenizer)[2], 64, stop_ids=frozenset(), kv_cache_bytes=0)
    assert (await run(compiled, request))[1].ids == (await run(eager, request))[1].ids
    assert compiled.status().extra["compiledDecode"] == "ready"  # no step fell back to eager


async def test_a_prompt_past_the_first_attention_window(engines):
    """The step attends to a window of the static cache; a longer sequence widens it without
    compiling again, and the tokens and logits stay eager's."""
    import torch

    eager, compiled, tokenizer, _ = engines
    example = KNOWN_EXAMPLES[3]
    lines, ids = 20, []
    while len(ids) <= WINDOW_STEP + 8:  # as many lines as this tokenizer needs to pass the first window
        lines += 5
        filler = "".join(f"value_{i} = {i}\n" for i in range(lines))
        document = Document("file:///long.py", filler + example.prefix + example.suffix, 1)
        ids = build_prompt(document, len(filler + example.prefix), tokenizer, Settings(context_enabled=False),
                           "cpu").ids
    assert WINDOW_STEP < len(ids) < 512 - 64
    request = GenerationRequest(ids, 64, stop_ids=frozenset(), kv_cache_bytes=0)
    (_, ours), (_, theirs) = await run(compiled, request), await run(eager, request)
    assert ours.ids == theirs.ids and compiled.status().extra["compiledDecode"] == "ready"
    assert compiled.cache_stats()["kv"]["size"] == (len(ids) + 63) * compiled.prefix_cache.bytes_per_token
    # Greedy tokens of this model have wide margins; its logits tell a missing position at once.
    decoder, start = compiled._compiled, WINDOW_STEP - 2
    with torch.inference_mode():
        decoder.keep_prefix(ids, reuse=False)
        decoder.forward(ids[:start])  # eagerly, within the first window
        steps = torch.cat([decoder.forward([token]) for token in ids[start:]])  # compiled, across its end
        reference = eager._model(input_ids=torch.tensor([ids])).logits[0, start:]
    assert torch.allclose(steps, reference, atol=LOGIT_TOLERANCE), float((steps - reference).abs().max())


async def test_a_typed_on_prompt_reuses_the_static_cache(engines):
    _, compiled, tokenizer, _ = engines
    example = KNOWN_EXAMPLES[1]
    settings = Settings(context_enabled=False, fim_mode="spm")
    before = build_prompt(Document("file:///c.py", example.prefix + example.suffix, 1), len(example.prefix),
                          tokenizer, settings, "cpu").ids
    typed = example.prefix + "sel"
    after = build_prompt(Document("file:///c.py", typed + example.suffix, 2), len(typed), tokenizer, settings,
                         "cpu").ids
    await run(compiled, GenerationRequest(before, 1, stop_ids=tokenizer.stop_ids()))
    _, last = await run(compiled, GenerationRequest(after, 1, stop_ids=tokenizer.stop_ids()))
    assert last.reused_tokens == common_prefix(before, after) > len(after) - 4
    assert last.evaluated_tokens == len(after) - last.reused_tokens


async def test_healing_and_cancel_on_the_compiled_path(engines):
    eager, compiled, tokenizer, _ = engines
    ids = prompts(tokenizer)[0]
    request = GenerationRequest(ids, MAX_NEW_TOKENS, stop_ids=tokenizer.stop_ids(), heal_text="ret")
    assert (await run(compiled, request))[0] == (await run(eager, request))[0] == KNOWN_EXAMPLES[0].middle
    cancel, seen = CancelToken(), []

    def emit(chunk):  # on the generation thread: the next step must see the cancel
        seen.append(chunk)
        if len(seen) == 3:
            cancel.cancel()

    last = compiled._decode_loop(GenerationRequest(ids, 200, stop_ids=frozenset()), cancel, emit)
    assert last.stop_reason == "cancelled" and last.tokens == seen[-1].tokens  # nothing picked after it
    assert last.evaluated_tokens == len(ids) - last.reused_tokens + last.tokens  # the prompt's rest, one step each


async def test_a_step_that_would_compile_again_falls_back_to_eager(engines):
    """Guards that no longer hold must not compile on the generation thread: the step gives up
    for good and the same generation goes on eagerly, with eager's tokens."""
    eager, compiled, tokenizer, _ = engines
    model = eager._model
    decoder = CompiledDecoder(model, "cpu", eager._cache_argument, 512)
    decoder._cache = windowed_static_cache(model.config, 512)
    decoder.state = "ready"

    def recompiles(tensor, window):
        raise RuntimeError("Detected recompile when torch.compile stance is 'fail_on_recompile'")

    decoder._step = recompiles
    ids = prompts(tokenizer)[4]
    eager._compiled = decoder
    try:
        last = eager._decode_loop(GenerationRequest(ids, MAX_NEW_TOKENS, stop_ids=tokenizer.stop_ids()),
                                  CancelToken(), lambda chunk: None)
    finally:
        eager._compiled = None
    assert decoder.state == "failed" and "Detected recompile" in decoder.message
    assert tokenizer.decode_infilling(last.ids) == KNOWN_EXAMPLES[2].middle


async def test_the_twin_shares_the_weights_and_computes_one_row_as_a_reduction(engines):
    import torch

    eager, *_ = engines
    model = eager._model
    twin = decode_twin(model, matvec=True)
    assert twin.lm_head.weight is model.lm_head.weight and twin is not model
    assert twin.lm_head.forward is not model.lm_head.forward
    with torch.inference_mode():
        ids = torch.tensor([[1, 2, 3]])
        rows = twin(input_ids=ids).logits, model(input_ids=ids).logits
        one = twin(input_ids=ids[:, :1]).logits, model(input_ids=ids[:, :1]).logits
    assert torch.equal(*rows)  # several rows: nn.Linear as before
    assert torch.allclose(*one, atol=1e-4) and not torch.equal(*one)  # one row: the reduction


def _paused(decoder: CompiledDecoder) -> bool:
    frame = sys._current_frames().get(decoder._thread.ident)
    while frame is not None and frame.f_code is not CompiledDecoder._trace.__code__:
        frame = frame.f_back
    return frame is not None


async def test_the_warm_up_pauses_while_a_suggestion_is_served_and_ends_when_the_engine_closes(trained_model):
    """Compiling holds the GIL most of the time, so the warm-up waits while a generation runs
    (a SmolLM2 suggestion took 10-30 times as long beside it); a closed engine's compile would
    hold the model and the cores for minutes more."""
    tokenizer = ModelTokenizer.from_pretrained(str(trained_model), local_files_only=True)
    backend = TransformersBackend(str(trained_model), tokenizer, device="cpu", local_files_only=True,
                                  compile_mode="on", context_tokens=512)
    await backend.load(lambda message, percentage: None)
    decoder = backend._compiled
    with decoder.serving():
        deadline = time.monotonic() + 60
        while not _paused(decoder) and decoder.state == "warming" and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert _paused(decoder)  # at its next Python call
        await asyncio.sleep(0.5)
        assert _paused(decoder) and decoder.state == "warming"
        await backend.close()  # out of the pause, and abandoned
    assert decoder.state == "failed" and "abandoned" in decoder.message and not decoder._thread.is_alive()


EXIT_WHILE_COMPILING = """
import asyncio, sys, time
import torch
from code_llama_ls.backends.transformers_backend import TransformersBackend
from code_llama_ls.prompts.tokenization import ModelTokenizer

model = sys.argv[1]
backend = TransformersBackend(model, ModelTokenizer.from_pretrained(model, local_files_only=True), device="cpu",
                              local_files_only=True, compile_mode="on", context_tokens=512)
asyncio.run(backend.load(lambda message, percentage: None))
while not torch.compiler.is_compiling() and backend.status().extra["compiledDecode"] == "warming":
    time.sleep(0.01)
time.sleep(2)
print(backend.status().extra["compiledDecode"])
"""


async def test_exiting_while_the_step_compiles_ends_cleanly(trained_model, tmp_path):
    """A process that ends mid-compile (an editor closed right after start) exits with its own
    status: left alone in torch's C++ code, the compile thread aborted it ("terminate called
    without an active exception", status 134) in 3 of 4 runs of this test. An empty inductor cache: the
    C++ compiler is running then."""
    done = subprocess.run([sys.executable, "-c", EXIT_WHILE_COMPILING, str(trained_model)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path)})
    assert done.returncode == 0 and "terminate called" not in done.stderr, done.stderr[-3000:]
    assert done.stdout.split() == ["warming"]  # it did end in the middle


@pytest.mark.filterwarnings("ignore")
def test_auto_compiles_only_where_it_was_measured_faster():
    import torch

    assert compiles_by_default("cpu", torch.float32, 540 * 10**6)  # SmolLM2-135M, as measured
    assert not compiles_by_default("cpu", torch.float32, 2 * 10**6)  # the tiny test models: unmeasured
    assert not compiles_by_default("cpu", torch.bfloat16, 10**9) and not compiles_by_default("mps", torch.float16)
    assert compiles_by_default("cuda", torch.bfloat16) and compiles_by_default("cuda:1", torch.float16)
