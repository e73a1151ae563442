"""Prefix KV-cache reuse, token healing, the completion cache (typing-through) and eviction."""

from __future__ import annotations

import asyncio

import pytest

from code_llama_ls.backends.base import CancelToken, GenerationRequest
from code_llama_ls.backends.prefix_cache import PrefixCache, bytes_per_token, common_prefix
from benchmarks.tiny_model import KNOWN_EXAMPLES
from code_llama_ls.completion.cache import heal
from code_llama_ls.prompts.tokenization import piece_texts
from code_llama_ls.completion.engine import CompletionEngine
from code_llama_ls.documents import Document
from code_llama_ls.prompts.fim import Budget, assemble, build_infill_prompt
from code_llama_ls.runtime.manager import RuntimeEvents, RuntimeManager
from code_llama_ls.settings import Settings

ADD = next(ex for ex in KNOWN_EXAMPLES if ex.prefix.startswith("def add("))
LOGIT_TOLERANCE = 1e-4  # float32: reuse and a fresh prefill differ only by summation order


@pytest.fixture(scope="module")
def backend(trained_model):
    from code_llama_ls.backends.transformers_backend import TransformersBackend
    from code_llama_ls.prompts.tokenization import ModelTokenizer

    tok = ModelTokenizer.from_file(trained_model / "tokenizer.json")
    b = TransformersBackend(str(trained_model), tok, device="cpu", dtype="float32", local_files_only=True)
    b._load_blocking(lambda *a: None)
    return b


def _generate(backend, ids, heal_text="", kv=2**30, max_new=32):
    request = GenerationRequest(ids, max_new, 0.0, backend.tokenizer.stop_ids(), heal_text=heal_text,
                                kv_cache_bytes=kv)
    return backend._decode_loop(request, CancelToken(), lambda chunk: None)


def test_reused_prefix_gives_the_logits_of_a_fresh_run(backend):
    import torch
    from transformers import DynamicCache

    model, tok = backend._model, backend.tokenizer
    ids = assemble(tok, ADD.prefix, ADD.suffix, "spm")
    with torch.inference_mode():
        fresh = model(input_ids=torch.tensor([ids]), cache=DynamicCache(config=model.config)).logits[0, -1]
        cache = PrefixCache(2**30, bytes_per_token(model.config, 4))
        head = DynamicCache(config=model.config)
        model(input_ids=torch.tensor([ids[:-3] + [5, 6, 7]]), cache=head)  # a prompt sharing all but 3 tokens
        cache.put(ids[:-3] + [5, 6, 7], head)
        reused, keep = cache.take(ids)
        assert keep == len(ids) - 3 and reused.get_seq_length() == keep
        tail = model(input_ids=torch.tensor([ids[keep:]]), cache=reused).logits[0, -1]
    assert torch.allclose(fresh, tail, atol=LOGIT_TOLERANCE), float((fresh - tail).abs().max())


def test_backend_reuses_the_cache_and_generates_the_same(backend):
    backend.prefix_cache.clear()
    ids = assemble(backend.tokenizer, ADD.prefix, ADD.suffix, "spm")
    first = _generate(backend, ids)
    second = _generate(backend, ids)
    assert first.reused_tokens == 0 and second.reused_tokens == len(ids) - 1
    assert first.ids == second.ids == backend.tokenizer.encode_infilling(ADD.middle)
    cold = _generate(backend, ids, kv=0)  # reuse off
    assert cold.reused_tokens == 0 and cold.ids == first.ids


def test_prompt_lookup_drafting_keeps_greedy_output(backend):
    ids = assemble(backend.tokenizer, ADD.prefix, ADD.suffix, "spm")
    plain = _generate(backend, ids, kv=0)
    request = GenerationRequest(ids, 32, 0.0, backend.tokenizer.stop_ids(), kv_cache_bytes=0, prompt_lookup_tokens=4)
    drafted = backend._decode_loop(request, CancelToken(), lambda chunk: None)
    assert drafted.ids == plain.ids


def test_eviction_keeps_the_cache_under_its_cap():
    cache = PrefixCache(capacity_bytes=100, bytes_per_token=10)

    class Fake:
        def __init__(self, n): self.n = n
        def crop(self, k): self.n += k

    cache.put([1, 2, 3, 4], Fake(4))  # 40 bytes
    cache.put([5, 6, 7, 8], Fake(4))  # 80
    cache.put([9, 10, 11], Fake(3))  # 110 > 100: the oldest goes
    assert cache.used_bytes <= 100 and len(cache) == 2
    assert cache.take([1, 2, 3, 4, 5]) == (None, 0)  # evicted
    taken, keep = cache.take([5, 6, 99])
    assert keep == 2 and taken.n == 2  # cropped to the shared prefix
    cache.put(list(range(20)), Fake(20))  # larger than the cap: not kept
    assert cache.used_bytes <= 100
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2


def test_bytes_per_token_follows_the_config():
    class Config:
        num_hidden_layers, num_attention_heads, num_key_value_heads, hidden_size = 32, 32, 32, 4096
    assert bytes_per_token(Config(), 2) == 2 * 32 * 32 * 128 * 2  # 7B in bf16: 0.5 MiB per token


def _prompt(tok, before, after, mode="spm"):
    return build_infill_prompt(tok, before, after, Budget(4096, 32), mode)


def test_healing_backs_off_a_word_piece_only(backend):
    tok = backend.tokenizer
    pieces = piece_texts(tok)
    prompt = _prompt(tok, "items = []\nitems.ap", "\n")
    ids, text = heal(prompt, pieces)
    assert ids == prompt.ids[:-1] and text and "ap".endswith(text.strip()) and text.strip()
    psm = _prompt(tok, "items = []\nitems.ap", "\n", "psm")
    ids, text = heal(psm, pieces)
    index = 2 + psm.prefix_tokens - 1
    assert ids == psm.ids[:index] + psm.ids[index + 1:] and text.strip()
    for before in ("x = f(", "def add(a, b):\n    ", "x =", "items."):  # punctuation, spaces: unchanged
        prompt = _prompt(tok, before, "\n")
        assert heal(prompt, pieces) == (prompt.ids, "")


def test_healing_completes_the_word_the_prefix_ends_in(backend):
    """``    ret|`` ends on a word piece; healed, the model spells ``return`` and the shown text
    is the rest of it (naive decoding continues after the broken piece instead)."""
    tok = backend.tokenizer
    before = ADD.prefix + "ret"
    prompt = _prompt(tok, before, ADD.suffix)
    ids, text = heal(prompt, piece_texts(tok))
    assert text.strip() and "ret".endswith(text.strip())
    out = _generate(backend, ids, heal_text=text, kv=0)
    raw = tok.decode_infilling(out.ids)
    assert raw.startswith(text)
    assert before[:len(before) - len(text)] + raw == ADD.prefix + ADD.middle


def _engine(model_dir, **overrides):
    options = {"max_new_tokens": 32, **overrides}
    settings = Settings(model=str(model_dir), local_files_only=True, device="cpu", context_enabled=False,
                        debounce_ms=0, **options)
    events = RuntimeEvents(lambda *a: None, lambda *a: None, lambda *a: None, lambda *a: None, print)
    runtime = RuntimeManager(lambda: settings, events)
    return CompletionEngine(runtime.get, lambda: settings), runtime


def test_typing_through_a_suggestion_is_served_without_a_model_call(trained_model):
    async def scenario():
        engine, runtime = _engine(trained_model)
        uri = "file:///t/add.py"
        shown = []
        for version, typed in enumerate(["", "r", "ret", "return", "return a", "return a +"], start=1):
            document = Document(uri, ADD.prefix + typed + ADD.suffix, version, "python")
            completion = await engine.complete(document, len(ADD.prefix + typed), automatic=True)
            shown.append((completion.text, completion.from_cache))
        calls = [e for e in engine.events if e["kind"] == "generation"]
        await runtime.close()
        return shown, calls

    shown, calls = asyncio.run(scenario())
    # "    " and "    r" end on different space pieces: the second state needs a model call (a
    # cheap one: the KV prefix is reused); "ret" and "return" are read off its path. Whether a
    # later state is depends on how the path split the text into tokens.
    assert [text for text, _ in shown] == ["return a + b", "eturn a + b", "urn a + b", " a + b", " + b", " b"]
    assert [cached for _, cached in shown][:4] == [False, False, True, True]
    assert len(calls) < len(shown) - 2


def test_a_request_extending_the_running_generation_waits_for_it(random_model):
    async def scenario():
        engine, runtime = _engine(random_model, max_new_tokens=400, max_context_tokens=4096)
        await runtime.get()
        uri = "file:///t/add.py"
        first_doc = Document(uri, ADD.prefix + ADD.suffix, 1, "python")
        first = asyncio.ensure_future(engine.complete(first_doc, len(ADD.prefix), automatic=True))
        while not engine._running or len(next(iter(engine._running.values())).produced) < 3:
            await asyncio.sleep(0.01)
        produced = next(iter(engine._running.values())).produced
        typed = produced[:2]
        second_doc = Document(uri, ADD.prefix + typed + ADD.suffix, 2, "python")
        second = asyncio.ensure_future(engine.complete(second_doc, len(ADD.prefix + typed), automatic=True))
        results = await asyncio.gather(first, second, return_exceptions=True)
        calls = [e for e in engine.events if e["kind"] == "generation"]
        answers = [e for e in engine.events if e["kind"] == "answer"]
        await runtime.close()
        return results, calls, answers

    results, calls, answers = asyncio.run(scenario())
    assert not isinstance(results[0], BaseException)  # the older request was not cancelled
    assert not isinstance(results[1], BaseException)
    assert calls[0]["reason"] != "cancelled"
    assert answers[-1]["timingsMs"]["waited"] > 0  # the newer one waited for the running generation
