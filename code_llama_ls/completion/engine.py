"""The completion pipeline: document → prompt → backend → post-processing.

It also owns what makes a language server usable while a model is slow:

- one answer shared by requests for the same document version and position;
- a completion cache read token-exactly (``completion/cache.py``): a request whose prompt is
  an earlier greedy generation's prompt plus tokens that generation produced (the user typed
  the next characters of a suggestion) is answered without a model call;
- a newer request for a document that extends the running generation's prompt by text that
  generation already produced waits for it and is answered from it; any other newer request
  supersedes (cancels) the older requests and stops their generation within one decoding step;
- a request that is no longer the newest for its document when it would start a model call is
  dropped (answered as cancelled), so the freed worker starts the newest one at once;
- a request cancelled by the client stops its generation unless a newer request follows it
  (after a short grace, so a follower sent right after the cancel still finds it);
- token healing and SPM prompts for automatic triggers (``fimMode: auto``), which keep the
  backend's KV-cache prefix valid while typing.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from code_llama_ls.backends.base import BackendError, CancelToken, Chunk, GenerationRequest
from code_llama_ls.completion.cache import CachedGeneration, CacheHit, CompletionCache, heal
from code_llama_ls.completion.postprocess import CursorContext, postprocess_outcome
from code_llama_ls.completion.shape import cursor_context
from code_llama_ls.context.engine import ContextEngine
from code_llama_ls.completion.span import Span, completion_scope
from code_llama_ls.documents import Document
from code_llama_ls.memory import cache_stats
from code_llama_ls.prompts.at_cursor import build_prompt, infill_parts
from code_llama_ls.prompts.fim import InfillPrompt
from code_llama_ls.prompts.tokenization import piece_texts
from code_llama_ls.runtime.manager import Runtime
from code_llama_ls.settings import Settings

log = logging.getLogger(__name__)

class CompletionSkipped(Exception):
    """No completion for a reason worth logging (disabled language, ignored file, no model …)."""


CANCEL_GRACE_S = 0.05
"""How long a client-cancelled generation keeps running for a newer request to follow it."""


@dataclass(frozen=True)
class Completion:
    text: str
    offset: int  # where the text is inserted (the cursor)
    tokens: int
    stop_reason: str
    timings_ms: dict[str, float]
    replace_end: int = 0  # characters after the cursor, on its line, that the text replaces
    generation_id: int = 0  # the model call whose tokens this is
    from_cache: bool = False  # served without a model call


@dataclass(frozen=True)
class NoSuggestion:
    """A request that ended without a suggestion, and why: post-processing's reason, or ``cancelled``."""

    reason: str
    stop_reason: str
    tokens: int


@dataclass(eq=False)
class _Request:
    key: tuple[str, int, int]
    seq: int
    task: asyncio.Task | None = None
    waiters: set[asyncio.Task] = field(default_factory=set)
    cancel: CancelToken = field(default_factory=CancelToken)  # stops its model call within a step


@dataclass(eq=False)
class _Generation:
    """A model call in flight, with what a newer request needs to decide to follow it."""

    id: int
    owner: _Request
    before: str  # document text before the cursor
    after: str  # and after it
    finished: asyncio.Future
    produced: str = ""  # text generated so far after the cursor (healed text cut)

    def extended_by(self, before: str, after: str) -> bool:
        return (after == self.after and before.startswith(self.before)
                and self.produced.startswith(before[len(self.before):]))


CONTINUATION = re.compile(r"(\}\s*)?(else|elif|except|finally|catch|case|default)\b")
"""A line that leaves the block only to go on with its statement (``else:``, ``} catch (e) {``)."""


class UnitEnd:
    """Whether a left-to-right generation has written past what will be shown.

    A model that does not infill never ends the unit itself (it goes on into the next function,
    or into prose), so every suggestion would cost ``maxNewTokens``. After each complete line we
    shape the text so far (as if ``maxNewTokens`` had cut it). The unit is over once what would be
    shown ends before a complete line indented less than the suggestion's own code that does not
    go on with its statement (``else:``, ``except``): a line that leaves the block, which the
    shaping cuts at whatever follows. A line cut for a reason later text can undo (a block header
    still waiting for its body) is not such a line. Once over, it stays over."""

    def __init__(self, cursor) -> None:
        self._cursor = cursor
        self._lines = 0
        self.over = False

    def reached(self, produced: str) -> bool:
        lines = produced.count("\n")
        if self.over or lines < 2 or lines == self._lines:
            return self.over
        self._lines = lines
        shown = postprocess_outcome(produced, self._cursor, truncated=True).suggestion
        if shown is None:
            return False
        text = shown.text.replace("\r\n", "\n")  # shaped in the document's line breaks
        complete = produced[:produced.rfind("\n")]
        after = [line for line in complete[len(text):].split("\n")[1:] if line.strip()]
        self.over = bool(after) and _indent(after[0]) < self._level(text) \
            and not CONTINUATION.match(after[0].lstrip())
        return self.over

    def _level(self, text: str) -> int:
        """The indentation of the suggestion's code: its first line's, counted from the cursor
        line's start; a suggestion that starts with a line break (after a header): its body's."""
        first, _, rest = text.partition("\n")
        if first.strip():
            return _indent(self._cursor.line_prefix + first)
        return _indent(next((line for line in rest.split("\n") if line.strip()), ""))


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


@dataclass(frozen=True)
class _Prepared:
    """What one request works from, taken before it waits: the document may change meanwhile."""

    document: Document
    offset: int
    automatic: bool  # an inline completion triggered by typing
    settings: Settings
    runtime: Runtime
    before: str  # document text before the cursor
    after: str  # and after it
    scope: Span
    cursor: CursorContext
    prompt: InfillPrompt
    ids: list[int]  # the prompt's ids, healed
    heal_text: str  # the text healing backed off (the suggestion starts by spelling it)
    pieces: list[str] | None  # the tokenizer's piece texts when healing
    started: float  # perf_counter once the runtime was ready
    prompt_done: float

    @property
    def uri(self) -> str:
        return self.document.uri

    @property
    def greedy(self) -> bool:
        return self.settings.temperature <= 0


@dataclass(frozen=True)
class _Answer:
    """The raw text for the cursor, how it ended, and the times its timings are made of."""

    raw: str  # healed text cut
    tokens: int
    reason: str  # how its generation ended (max_tokens and unit_end cut the text short)
    generation_id: int
    from_cache: bool
    waited: float  # seconds waiting: for a running generation, and out the debounce
    searched: float  # perf_counter once the answer's source was settled (the cache, or a model call)
    generated: float  # perf_counter once the raw text was complete
    final: Chunk | None = None  # the backend's last chunk

    @classmethod
    def cached(cls, hit: CacheHit, waited: float) -> _Answer:
        done = time.perf_counter()
        return cls(hit.raw, hit.tokens, hit.reason, hit.generation_id, True, waited, done, done)


def _stopped_at_line_end(prepared: _Prepared, generation: _Generation, reason: str) -> bool:
    """A line-scoped generation we stopped once its first line was complete."""
    return reason == "cancelled" and prepared.scope == "line" and "\n" in generation.produced


class CompletionEngine:
    def __init__(self, runtime: Callable[[], "asyncio.Future[Runtime] | asyncio.Task[Runtime]"],
                 settings: Callable[[], Settings],
                 on_generated: Callable[[dict], None] = lambda info: None,
                 context: ContextEngine | None = None) -> None:
        self._runtime = runtime
        self.context = context
        self._settings = settings
        self._on_generated = on_generated
        self._requests: dict[tuple[str, int, int], _Request] = {}
        self._latest_seq: dict[str, int] = {}
        self._running: dict[str, _Generation] = {}
        self._seq = itertools.count(1)
        self._generation_ids = itertools.count(1)
        self.cache = CompletionCache(settings().completion_cache_entries)
        self._cache_owner: Runtime | None = None
        self.events: deque[dict] = deque(maxlen=settings().engine_stats_events)
        """What happened, for benchmarks: one record per model call and per answer."""

    def check_allowed(self, document: Document) -> None:
        settings = self._settings()
        if "*" not in settings.enabled_languages and document.language not in settings.enabled_languages \
                and document.language_id not in settings.enabled_languages:
            raise CompletionSkipped(f"completions are disabled for language {document.language_id or document.language}")
        if self.context is not None and self.context.is_ignored(document.uri):
            raise CompletionSkipped("file matches an ignore rule; it never goes into a prompt")
        if document.too_large:
            raise CompletionSkipped("document too large for completions")

    async def complete(self, document: Document, offset: int, automatic: bool = False) -> Completion | None:
        """The suggestion at ``offset``, or None; cancelled (CancelledError) when superseded.

        ``automatic``: an inline completion triggered by typing (SPM under ``fimMode: auto``)."""
        result = await self.suggest(document, offset, automatic)
        return result if isinstance(result, Completion) else None

    async def suggest(self, document: Document, offset: int, automatic: bool = False) -> Completion | NoSuggestion:
        """As ``complete``, saying why when there is nothing to suggest."""
        self.check_allowed(document)
        key = (document.uri, document.version, offset)
        request = self._requests.get(key)
        if request is None:
            request = _Request(key, next(self._seq))
            self._latest_seq[document.uri] = request.seq
            self._requests[key] = request
            request.task = asyncio.ensure_future(self._serve(request, document, offset, automatic))
            request.task.add_done_callback(lambda _: self._forget(request))
        me = asyncio.current_task()
        if me is not None:
            request.waiters.add(me)
        try:
            return await asyncio.shield(request.task)
        except asyncio.CancelledError:
            if me is not None:
                request.waiters.discard(me)
            if not request.waiters:
                self._release(request)
            raise
        finally:
            if me is not None:
                request.waiters.discard(me)

    def _release(self, request: _Request) -> None:
        """No one waits for ``request`` any more: stop it, unless a follower arrives first."""
        def stop() -> None:
            if not request.waiters:
                request.cancel.cancel()
        try:
            asyncio.get_running_loop().call_later(CANCEL_GRACE_S, stop)
        except RuntimeError:
            stop()

    def _supersede(self, uri: str, keep: _Request) -> None:
        """Cancel every other unfinished request for ``uri`` (their generations stop)."""
        for request in list(self._requests.values()):
            if request is keep or request.key[0] != uri or request.task is None or request.task.done():
                continue
            request.cancel.cancel()
            for waiter in list(request.waiters):
                waiter.cancel()

    def _forget(self, request: _Request) -> None:
        if self._requests.get(request.key) is request:
            del self._requests[request.key]
        if self._latest_seq.get(request.key[0]) == request.seq:  # no newer request: the document's entry goes
            del self._latest_seq[request.key[0]]
        if request.task is not None and not request.task.cancelled():
            request.task.exception()  # retrieved: errors were already reported to waiters

    def stats(self) -> list[dict]:
        return list(self.events)

    def cache_stats(self) -> dict[str, dict]:
        """Each cache this engine and its runtime keep: ``{size, bound, unit}`` by name."""
        caches = {"completion": self.cache.stats(),
                  "engineEvents": cache_stats(len(self.events), self.events.maxlen, "records")}
        runtime = self._cache_owner
        if runtime is not None:
            caches["tokenizerLines"] = runtime.tokenizer.line_cache.stats("lines")
            caches.update(runtime.backend.cache_stats())
        return caches

    def _follow_bounds(self, settings: Settings, runtime: Runtime) -> None:
        """Cache bounds follow the settings at every request, as ``kvCacheMb`` does."""
        self.cache.resize(settings.completion_cache_entries)
        runtime.tokenizer.line_cache.resize(settings.tokenizer_line_cache)
        if self.events.maxlen != settings.engine_stats_events:
            self.events = deque(self.events, maxlen=settings.engine_stats_events)

    async def _serve(self, request: _Request, document: Document, offset: int,
                     automatic: bool) -> Completion | NoSuggestion:
        prepared = await self._prepare(document, offset, automatic)
        hit, waited = await self._known_answer(prepared)
        if hit is not None:
            self._supersede(prepared.uri, keep=request)
            return self._finish(prepared, _Answer.cached(hit, waited))
        if not prepared.ids:  # left to right, nothing before the cursor, and the tokenizer adds no BOS
            return NoSuggestion("nothing before the cursor for a left-to-right model to continue", "skipped", 0)
        return self._finish(prepared, await self._generate(request, prepared, waited))

    async def _prepare(self, document: Document, offset: int, automatic: bool) -> _Prepared:
        """The request's settings, runtime and prompt, with the document text it was made from."""
        settings = self._settings()
        runtime = await self._runtime()
        if runtime is not self._cache_owner:  # another model: its paths mean nothing here
            self.cache.clear()
            self._cache_owner = runtime
        self._follow_bounds(settings, runtime)
        started = time.perf_counter()
        # Snapshot what the pipeline needs: the document may change while we generate.
        before, after = document.text[:offset], document.text[offset:]
        scope = completion_scope(document, offset)
        cursor = cursor_context(before, after, document.language)  # windows around the cursor
        prompt = build_prompt(document, offset, runtime.tokenizer, settings, runtime.backend.device_type,
                              self.context, automatic, runtime.capabilities)
        tokenizer = runtime.tokenizer
        heals = settings.token_healing and runtime.backend.supports_healing
        pieces = piece_texts(tokenizer) if heals else None
        ids, heal_text = heal(prompt, pieces, not tokenizer.sentencepiece) if pieces is not None else (prompt.ids, "")
        prompt_done = time.perf_counter()
        if settings.log_prompts:
            log.info("prompt for %s: prefix=%r suffix=%r heal=%r", document.uri, prompt.prefix, prompt.suffix,
                     heal_text)
        return _Prepared(document, offset, automatic, settings, runtime, before, after, scope, cursor, prompt, ids,
                         heal_text, pieces, started, prompt_done)

    async def _known_answer(self, prepared: _Prepared) -> tuple[CacheHit | None, float]:
        """The completion cache's answer, if need be once the running generation the user typed
        into has finished; and the seconds spent waiting for it."""
        hit = self._lookup(prepared)
        if hit is not None or not prepared.greedy:
            return hit, 0.0
        running = self._running.get(prepared.uri)
        if running is None or running.finished.done() or not running.extended_by(prepared.before, prepared.after):
            return None, 0.0
        # The user typed what the running generation already produced: wait for it.
        me = asyncio.current_task()
        running.owner.waiters.add(me)  # a waiter: its generation is not stopped for want of one
        wait_started = time.perf_counter()
        try:
            await asyncio.shield(running.finished)
        finally:
            running.owner.waiters.discard(me)
        waited = time.perf_counter() - wait_started
        return self._lookup(prepared), waited

    def _lookup(self, prepared: _Prepared) -> CacheHit | None:
        if not prepared.greedy:
            return None
        tokenizer = prepared.runtime.tokenizer
        hit = self.cache.lookup(prepared.uri, prepared.ids, prepared.heal_text, prepared.scope,
                                prepared.settings.max_new_tokens, tokenizer, prepared.pieces or piece_texts(tokenizer))
        if hit is not None and hit.reason == "unit_end" and not UnitEnd(prepared.cursor).reached(hit.raw):
            return None  # typed past where that generation saw the unit end: its rest is cut short
        return hit

    async def _generate(self, request: _Request, prepared: _Prepared, waited: float) -> _Answer:
        """A model call, made once an automatic trigger has waited out the debounce if the request
        is still its document's newest; it supersedes the older ones."""
        debounce_started = time.perf_counter()
        if prepared.automatic and prepared.settings.debounce_ms > 0:
            # Typing: a newer keystroke may follow at once; it would get the model instead.
            await asyncio.sleep(prepared.settings.debounce_ms / 1000)
        waited += time.perf_counter() - debounce_started
        if self._latest_seq.get(prepared.uri) != request.seq or request.cancel.cancelled:
            # A newer request for this document exists; it does the work (coalescing).
            raise asyncio.CancelledError
        self._supersede(prepared.uri, keep=request)
        searched = time.perf_counter()

        generation = _Generation(next(self._generation_ids), request, prepared.before, prepared.after,
                                 asyncio.get_running_loop().create_future())
        self._running[prepared.uri] = generation
        tokens, reason, final = await self._stream(request.cancel, prepared, generation)
        if _stopped_at_line_end(prepared, generation, reason):
            reason = "line_end"
        return _Answer(generation.produced, tokens, reason, generation.id, False, waited, searched,
                       time.perf_counter(), final)

    async def _stream(self, cancel: CancelToken, prepared: _Prepared,
                      generation: _Generation) -> tuple[int, str, Chunk | None]:
        """Stream the model call into ``generation.produced``, stopped where nothing more will be
        shown (a line-scoped request's first line end, a left-to-right unit's end); the tokens,
        the stop reason and the last chunk."""
        settings, prompt, heal_text = prepared.settings, prepared.prompt, prepared.heal_text
        backend_request = GenerationRequest(
            prepared.ids, settings.max_new_tokens, settings.temperature, prepared.runtime.tokenizer.stop_ids(),
            heal_text=heal_text, kv_cache_bytes=settings.kv_cache_mb * 2**20,
            prompt_lookup_tokens=settings.prompt_lookup_tokens,
            infill=infill_parts(prompt) if settings.remote and prompt.mode != "l2r" else None)
        raw, tokens, reason, final = "", 0, "max_tokens", None
        unit_end = UnitEnd(prepared.cursor) if prompt.mode == "l2r" else None
        try:
            async for chunk in prepared.runtime.backend.stream(backend_request, cancel):
                raw += chunk.text
                tokens = chunk.tokens or tokens
                generation.produced = raw[len(heal_text):] if raw.startswith(heal_text) else ""
                if chunk.stop_reason is not None:
                    reason, final = chunk.stop_reason, chunk
                elif prepared.scope == "line" and "\n" in generation.produced:
                    cancel.cancel()  # the first line is complete: nothing more will be shown
                elif unit_end is not None and unit_end.reached(generation.produced):
                    cancel.cancel()  # left to right: the shown unit is over, the rest is cut
        finally:
            if reason == "cancelled" and unit_end is not None and unit_end.over:
                reason = "unit_end"
            self._end_generation(prepared, generation, final, reason)
        return tokens, reason, final

    def _end_generation(self, prepared: _Prepared, generation: _Generation, final: Chunk | None,
                        reason: str) -> None:
        """Followers stop waiting, a greedy generation's path goes into the completion cache, and
        the generation event is recorded."""
        if not generation.finished.done():
            generation.finished.set_result(None)
        if self._running.get(prepared.uri) is generation:
            del self._running[prepared.uri]
        if final is not None and final.ids is not None and prepared.greedy:
            cached_reason = "line_end" if _stopped_at_line_end(prepared, generation, reason) else reason
            self.cache.add(prepared.uri, CachedGeneration(list(prepared.ids), list(final.ids), cached_reason,
                                                          prepared.settings.max_new_tokens, generation.id))
        self._record_generation(prepared.document, prepared.offset, generation.id, final, reason)

    def _finish(self, prepared: _Prepared, answer: _Answer) -> Completion | NoSuggestion:
        """The raw text shaped into what is shown, with its timings reported and recorded."""
        outcome = postprocess_outcome(answer.raw, prepared.cursor,
                                      truncated=answer.reason in ("max_tokens", "unit_end"))
        shown = outcome.suggestion
        finished = time.perf_counter()
        timings = {
            "prompt": (prepared.prompt_done - prepared.started) * 1000,
            "lookup": (answer.searched - prepared.prompt_done - answer.waited) * 1000,
            "waited": answer.waited * 1000,
            "generation": (answer.generated - answer.searched) * 1000,
            "postprocess": (finished - answer.generated) * 1000,
        }
        if answer.from_cache:
            self._record_answer(prepared.document, prepared.offset, answer.generation_id, True, timings)
            if prepared.settings.log_prompts:
                log.info("completion from cache: raw=%r shown=%r", answer.raw, shown)
            stop_reason = "cache"
        else:
            self._report_generated(prepared, answer, shown, timings, finished)
            if answer.reason == "cancelled":
                return NoSuggestion("cancelled", answer.reason, answer.tokens)
            stop_reason = answer.reason
        if shown is None:
            return NoSuggestion(outcome.why_empty, stop_reason, answer.tokens)
        return Completion(shown.text, prepared.offset, answer.tokens, stop_reason, timings, shown.replace_end,
                          answer.generation_id, answer.from_cache)

    def _report_generated(self, prepared: _Prepared, answer: _Answer, shown, timings: dict[str, float],
                          finished: float) -> None:
        """A model call's answer: to ``on_generated``, the events and the log."""
        final = answer.final
        model_ms = (final.seconds if final is not None else 0.0) * 1000
        info = {"latencyMs": round((finished - prepared.started) * 1000, 1), "tokens": answer.tokens,
                "stopReason": answer.reason, "promptTokens": len(prepared.prompt.ids),
                "promptMode": prepared.prompt.mode, "timingsMs": timings, "modelMs": round(model_ms, 1),
                "reusedTokens": final.reused_tokens if final is not None else 0,
                "healed": bool(prepared.heal_text)}
        self._on_generated(info)
        self._record_answer(prepared.document, prepared.offset, answer.generation_id, False, timings)
        log.info("generated %d tokens in %.0f ms (%s)", answer.tokens, info["latencyMs"], answer.reason)
        if prepared.settings.log_prompts:
            log.info("completion: raw=%r shown=%r", answer.raw, shown)

    def _record_generation(self, document: Document, offset: int, generation_id: int, final, reason: str) -> None:
        self.events.append({
            "kind": "generation", "id": generation_id, "uri": document.uri, "version": document.version,
            "offset": offset, "modelS": final.seconds if final is not None else 0.0,
            "tokens": final.tokens if final is not None else 0, "reason": reason,
            "reusedTokens": final.reused_tokens if final is not None else 0,
            "promptTokens": final.prompt_tokens if final is not None else 0,
            "evaluatedTokens": final.evaluated_tokens if final is not None else 0,
        })

    def _record_answer(self, document: Document, offset: int, generation_id: int, from_cache: bool,
                       timings: dict[str, float]) -> None:
        overhead = timings["prompt"] + timings["lookup"] + timings["postprocess"]
        self.events.append({"kind": "answer", "uri": document.uri, "version": document.version, "offset": offset,
                            "generationId": generation_id, "fromCache": from_cache, "overheadMs": overhead,
                            "timingsMs": dict(timings)})


__all__ = ["BackendError", "Completion", "CompletionEngine", "CompletionSkipped", "NoSuggestion"]
