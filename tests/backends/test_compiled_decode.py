"""``compile: on`` for the transformers engine on the trained tiny model: eager generations are
served while the step compiles, and once it is ready the compiled decode gives eager's greedy
tokens — known completions, a typed-on prompt that reuses the static cache's prefix, healing,
cancellation — and reports what it evaluated."""

from __future__ import annotations

import pytest
import pytest_asyncio

from code_llama_ls.backends.base import CancelToken, GenerationRequest
from code_llama_ls.backends.compiled_decode import compiles_by_default
from code_llama_ls.backends.prefix_cache import common_prefix
from code_llama_ls.backends.transformers_backend import TransformersBackend
from code_llama_ls.bench.tiny_model import KNOWN_EXAMPLES
from code_llama_ls.completion.engine import build_prompt
from code_llama_ls.documents import Document
from code_llama_ls.prompts.tokenization import ModelTokenizer
from code_llama_ls.settings import Settings

MAX_NEW_TOKENS = 24
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
    text, _ = await run(compiled, GenerationRequest(first, MAX_NEW_TOKENS, stop_ids=tokenizer.stop_ids()))
    served_while_warming = compiled.status().extra["compiledDecode"] == "warming" and text == KNOWN_EXAMPLES[0].middle
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
    cancel = CancelToken()
    chunks = 0
    async for chunk in compiled.stream(GenerationRequest(ids, 200, stop_ids=frozenset()), cancel):
        chunks += 1
        if chunks == 3:
            cancel.cancel()
        last = chunk
    assert last.stop_reason == "cancelled" and last.tokens < 200


@pytest.mark.filterwarnings("ignore")
def test_auto_compiles_only_where_it_was_measured_faster():
    assert not compiles_by_default("cpu")
    assert compiles_by_default("cuda") and compiles_by_default("cuda:1")
