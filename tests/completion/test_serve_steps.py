"""The steps a completion request goes through, each on its own with a scripted backend: prepare
(the prompt, healed, and the document text it was made from), the answer from the completion cache
or from the running generation, the model call, and the finish that shapes and reports it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from code_llama_ls.backends.base import Chunk
from code_llama_ls.completion.cache import CachedGeneration
from code_llama_ls.completion.engine import (
    Completion,
    CompletionEngine,
    NoSuggestion,
    _Answer,
    _Generation,
    _Request,
)
from code_llama_ls.documents import Document
from code_llama_ls.prompts.tokenization import ModelTokenizer
from code_llama_ls.runtime.manager import Runtime
from code_llama_ls.settings import Settings

ADD = "def add(a, b):\n    return"  # ends on a whole word: typing " a" appends its token to an SPM prompt
LINE_BEFORE, LINE_AFTER = "value = ", " + offset\n"  # text after the cursor: a line-scoped request
TIMING_KEYS = {"prompt", "lookup", "waited", "generation", "postprocess"}


class PathBackend:
    """Streams ``answer`` ``chunk`` characters at a time and ends as a greedy backend does, with
    every generated token id; a cancel stops it before the next chunk. Records each request."""

    name = "scripted-path"
    supports_healing = True
    device_type = "cpu"

    def __init__(self, tokenizer: ModelTokenizer, answer: str = "", chunk: int = 3) -> None:
        self.tokenizer, self.answer, self.chunk = tokenizer, answer, chunk
        self.requests = []

    async def stream(self, request, cancel):
        self.requests.append(request)
        sent, count = "", 0
        for start in range(0, len(self.answer), self.chunk):
            if cancel.cancelled:
                yield self._last(sent, count, "cancelled")
                return
            piece = self.answer[start:start + self.chunk]
            sent, count = sent + piece, count + 1
            yield Chunk(piece, count)
            await asyncio.sleep(0)
        yield self._last(sent, count, "eot")

    def _last(self, sent: str, count: int, reason: str) -> Chunk:
        return Chunk("", count, reason, prompt_tokens=11, seconds=0.25, ids=self.tokenizer.encode_infilling(sent),
                     reused_tokens=4, evaluated_tokens=9)


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir) -> ModelTokenizer:
    return ModelTokenizer.from_file(tokenizer_dir / "tokenizer.json")


class Harness:
    """An engine on a scripted runtime, with what it reported to ``on_generated``."""

    def __init__(self, tokenizer: ModelTokenizer, answer: str = "", **overrides) -> None:
        self.settings = Settings(**{"debounce_ms": 0, "context_enabled": False, "token_healing": False, **overrides})
        self.backend = PathBackend(tokenizer, answer)
        self.runtime = Runtime(tokenizer, self.backend)
        self.reported: list[dict] = []

        async def ready() -> Runtime:
            return self.runtime

        self.engine = CompletionEngine(ready, lambda: self.settings, self.reported.append)

    async def prepare(self, text: str, offset: int, automatic: bool = False, uri: str = "file:///t/a.py"):
        return await self.engine._prepare(Document(uri, text, 1, "python"), offset, automatic)

    def newest_request(self, prepared) -> _Request:
        """A request registered as its document's newest, as ``suggest`` registers it."""
        request = _Request((prepared.uri, prepared.document.version, prepared.offset), next(self.engine._seq))
        self.engine._latest_seq[prepared.uri] = request.seq
        self.engine._requests[request.key] = request
        return request

    def events(self, kind: str) -> list[dict]:
        return [event for event in self.engine.events if event["kind"] == kind]


# -- prepare ------------------------------------------------------------------------------


async def test_prepare_heals_a_prompt_ending_inside_a_word(tokenizer):
    harness = Harness(tokenizer, token_healing=True)
    before = "items = []\nitems.ap"
    prepared = await harness.prepare(before + "\n", len(before))
    prompt, cut = prepared.prompt, prepared.prompt.prefix_end
    assert prepared.heal_text.strip() and "ap".endswith(prepared.heal_text.strip())
    assert prepared.ids == prompt.ids[:cut] + prompt.ids[cut + 1:]
    assert prepared.pieces is not None and prepared.pieces[prompt.ids[cut]] == prepared.heal_text
    assert prepared.settings is harness.settings and prepared.runtime is harness.runtime and prepared.greedy
    assert prepared.started <= prepared.prompt_done
    assert harness.backend.requests == []

    unhealed = await Harness(tokenizer).prepare(before + "\n", len(before))
    assert unhealed.heal_text == "" and unhealed.ids == unhealed.prompt.ids and unhealed.pieces is None


async def test_prepare_snapshots_text_that_later_edits_do_not_change(tokenizer):
    harness = Harness(tokenizer)
    document = Document("file:///t/v.py", LINE_BEFORE + LINE_AFTER, 1, "python")
    prepared = await harness.engine._prepare(document, len(LINE_BEFORE), automatic=True)
    document.apply_change("something else entirely\n")
    assert (prepared.before, prepared.after) == (LINE_BEFORE, LINE_AFTER)
    assert prepared.scope == "line" and prepared.cursor.line_suffix == LINE_AFTER.rstrip("\n")
    assert prepared.cursor.line_prefix == LINE_BEFORE
    assert prepared.prompt.prefix.endswith(LINE_BEFORE) and prepared.prompt.suffix.startswith(LINE_AFTER.rstrip())
    assert prepared.prompt.mode == "spm" and prepared.automatic  # fimMode auto: typing gets SPM


# -- the answer from the cache or from the running generation ----------------------------


async def typed_through(harness: Harness, tokenizer: ModelTokenizer):
    """A prompt at ``ADD``'s end, and the one after the user typed " a" of its suggestion."""
    first = await harness.prepare(ADD + "\n", len(ADD), automatic=True)
    typed = await harness.prepare(ADD + " a\n", len(ADD) + 2, automatic=True)
    assert typed.ids[:len(first.ids)] == first.ids, "the typed prompt should extend the first (SPM)"
    assert typed.ids[len(first.ids):] == tokenizer.encode_infilling(" a")
    return first, typed


async def test_the_cache_answers_a_typed_through_request_without_a_model_call(tokenizer):
    harness = Harness(tokenizer)
    first, typed = await typed_through(harness, tokenizer)
    harness.engine.cache.add(first.uri, CachedGeneration(list(first.ids), tokenizer.encode_infilling(" a + b"), "eot",
                                                         harness.settings.max_new_tokens, 7))
    hit, waited = await harness.engine._known_answer(typed)
    assert (hit.raw, hit.generation_id, hit.reason, waited) == (" + b", 7, "eot", 0.0)
    other = await harness.prepare(ADD + " b\n", len(ADD) + 2, automatic=True)
    assert await harness.engine._known_answer(other) == (None, 0.0)  # not the suggestion's path
    assert harness.backend.requests == []


async def test_the_cache_step_waits_for_the_running_generation_the_user_typed_into(tokenizer):
    harness = Harness(tokenizer)
    first, typed = await typed_through(harness, tokenizer)
    owner = harness.newest_request(first)
    finished = asyncio.get_running_loop().create_future()
    harness.engine._running[first.uri] = _Generation(5, owner, first.before, first.after, finished, produced=" a +")
    follower = asyncio.ensure_future(harness.engine._known_answer(typed))
    await asyncio.sleep(0.05)
    assert not follower.done() and owner.waiters == {follower}  # its generation is kept for it

    harness.engine.cache.add(first.uri, CachedGeneration(list(first.ids), tokenizer.encode_infilling(" a + b"), "eot",
                                                         harness.settings.max_new_tokens, 5))
    finished.set_result(None)
    hit, waited = await follower
    assert (hit.raw, hit.generation_id) == (" + b", 5) and waited >= 0.05 and not owner.waiters


async def test_the_cache_step_does_not_wait_for_a_generation_that_went_elsewhere(tokenizer):
    harness = Harness(tokenizer)
    first, typed = await typed_through(harness, tokenizer)
    finished = asyncio.get_running_loop().create_future()
    harness.engine._running[first.uri] = _Generation(5, harness.newest_request(first), first.before, first.after,
                                                     finished, produced=" b - a")
    assert await asyncio.wait_for(harness.engine._known_answer(typed), 1) == (None, 0.0)


# -- generate -----------------------------------------------------------------------------


async def test_generation_stops_a_line_scoped_request_at_its_first_line_end(tokenizer):
    harness = Harness(tokenizer, "base * 2\nprint(value)\nmore()\n")
    prepared = await harness.prepare(LINE_BEFORE + LINE_AFTER, len(LINE_BEFORE))
    answer = await harness.engine._generate(harness.newest_request(prepared), prepared, 0.0)

    assert (answer.raw, answer.reason, answer.tokens, answer.from_cache) == ("base * 2\n", "line_end", 3, False)
    assert answer.final.seconds == 0.25 and answer.searched <= answer.generated and not harness.engine._running
    sent = harness.backend.requests[0]
    assert sent.prompt_ids == prepared.ids and sent.max_new_tokens == harness.settings.max_new_tokens
    generation = harness.events("generation")[0]  # the model call's own record keeps why it stopped
    assert {key: generation[key] for key in ("id", "reason", "tokens", "modelS", "reusedTokens", "uri")} == {
        "id": answer.generation_id, "reason": "cancelled", "tokens": 3, "modelS": 0.25, "reusedTokens": 4,
        "uri": prepared.uri}
    cached = harness.engine._lookup(prepared)  # the greedy path went into the completion cache
    assert (cached.raw, cached.reason, cached.generation_id) == ("base * 2\n", "line_end", answer.generation_id)


async def test_generation_debounces_typing_and_supersedes_older_requests(tokenizer):
    harness = Harness(tokenizer, "base * 2", debounce_ms=40)
    prepared = await harness.prepare(LINE_BEFORE + LINE_AFTER, len(LINE_BEFORE), automatic=True)
    older = _Request((prepared.uri, 0, 3), next(harness.engine._seq))
    older.task = asyncio.ensure_future(asyncio.sleep(10))
    older.waiters.add(older.task)
    harness.engine._requests[older.key] = older

    answer = await harness.engine._generate(harness.newest_request(prepared), prepared, 0.01)
    assert answer.waited >= 0.05 and (answer.raw, answer.reason) == ("base * 2", "eot")
    assert older.cancel.cancelled
    await asyncio.sleep(0)
    assert older.task.cancelled()


async def test_generation_leaves_the_work_to_a_newer_request(tokenizer):
    harness = Harness(tokenizer, "base * 2")
    prepared = await harness.prepare(LINE_BEFORE + LINE_AFTER, len(LINE_BEFORE))
    request = harness.newest_request(prepared)
    harness.engine._latest_seq[prepared.uri] = request.seq + 1
    with pytest.raises(asyncio.CancelledError):
        await harness.engine._generate(request, prepared, 0.0)
    assert harness.backend.requests == [] and not harness.events("generation")


# -- finish -------------------------------------------------------------------------------


async def timed(harness: Harness):
    """A line-scoped request prepared 1 s ago: its prompt took 2 ms."""
    prepared = await harness.prepare(LINE_BEFORE + LINE_AFTER, len(LINE_BEFORE))
    started = time.perf_counter() - 1.0
    return replace(prepared, started=started, prompt_done=started + 0.002), started


async def test_finish_shapes_a_generation_and_reports_every_timing(tokenizer):
    harness = Harness(tokenizer)
    prepared, started = await timed(harness)
    final = Chunk("", 6, "cancelled", seconds=0.25, reused_tokens=4)
    answer = _Answer("base * 2\nprint(value)", 6, "line_end", 9, False, 0.003, started + 0.010, started + 0.050, final)
    result = harness.engine._finish(prepared, answer)

    assert isinstance(result, Completion)
    assert (result.text, result.offset, result.tokens, result.stop_reason, result.generation_id, result.from_cache) \
        == ("base * 2", len(LINE_BEFORE), 6, "line_end", 9, False)
    timings = result.timings_ms
    assert set(timings) == TIMING_KEYS and timings["postprocess"] >= 950
    assert [timings[key] for key in ("prompt", "lookup", "waited", "generation")] == pytest.approx([2, 5, 3, 40])
    (info,) = harness.reported
    assert info["latencyMs"] >= 1000 and info["timingsMs"] is timings
    assert {key: info[key] for key in ("tokens", "stopReason", "promptTokens", "promptMode", "modelMs",
                                       "reusedTokens", "healed")} == {
        "tokens": 6, "stopReason": "line_end", "promptTokens": len(prepared.prompt.ids),
        "promptMode": prepared.prompt.mode, "modelMs": 250.0, "reusedTokens": 4, "healed": False}
    (event,) = harness.events("answer")
    assert (event["generationId"], event["fromCache"], event["timingsMs"]) == (9, False, timings)
    assert event["overheadMs"] == pytest.approx(timings["prompt"] + timings["lookup"] + timings["postprocess"])


async def test_finish_from_the_cache_reports_no_generation(tokenizer):
    harness = Harness(tokenizer)
    prepared, started = await timed(harness)
    done = started + 0.010
    result = harness.engine._finish(prepared, _Answer("base * 2\n", 3, "line_end", 4, True, 0.0, done, done))
    assert (result.text, result.stop_reason, result.generation_id, result.from_cache) == ("base * 2", "cache", 4, True)
    assert set(result.timings_ms) == TIMING_KEYS and result.timings_ms["generation"] == 0.0
    assert result.timings_ms["lookup"] == pytest.approx(8)
    assert harness.reported == [] and harness.events("answer")[0]["fromCache"]


async def test_finish_says_why_there_is_nothing_to_show(tokenizer):
    harness = Harness(tokenizer)
    prepared, started = await timed(harness)
    times = (0.0, started + 0.01, started + 0.02)
    cancelled = harness.engine._finish(prepared, _Answer("base", 1, "cancelled", 2, False, *times))
    assert cancelled == NoSuggestion("cancelled", "cancelled", 1)
    empty = harness.engine._finish(prepared, _Answer("", 1, "eot", 3, False, *times))
    assert isinstance(empty, NoSuggestion) and empty.stop_reason == "eot" and empty.reason
    assert [info["stopReason"] for info in harness.reported] == ["cancelled", "eot"]
    assert [event["generationId"] for event in harness.events("answer")] == [2, 3]
