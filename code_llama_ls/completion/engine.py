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

from code_llama_ls.backends.base import BackendError, CancelToken, GenerationRequest
from code_llama_ls.completion.cache import CachedGeneration, CompletionCache, heal
from code_llama_ls.completion.postprocess import postprocess_outcome
from code_llama_ls.completion.shape import cursor_context
from code_llama_ls.context.engine import ContextEngine
from code_llama_ls.completion.span import completion_scope
from code_llama_ls.documents import Document
from code_llama_ls.memory import cache_stats
from code_llama_ls.prompts.at_cursor import build_prompt, infill_parts
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
        settings = self._settings()
        runtime = await self._runtime()
        if runtime is not self._cache_owner:  # another model: its paths mean nothing here
            self.cache.clear()
            self._cache_owner = runtime
        self._follow_bounds(settings, runtime)
        started = time.perf_counter()
        uri = document.uri
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
        greedy = settings.temperature <= 0
        prompt_done = time.perf_counter()
        if settings.log_prompts:
            log.info("prompt for %s: prefix=%r suffix=%r heal=%r", uri, prompt.prefix, prompt.suffix, heal_text)

        def lookup():
            if not greedy:
                return None
            hit = self.cache.lookup(uri, ids, heal_text, scope, settings.max_new_tokens, tokenizer,
                                    pieces or piece_texts(tokenizer))
            if hit is not None and hit.reason == "unit_end" and not UnitEnd(cursor).reached(hit.raw):
                return None  # typed past where that generation saw the unit end: its rest is cut short
            return hit

        hit = lookup()
        waited = 0.0
        if hit is None and greedy:
            running = self._running.get(uri)
            if running is not None and not running.finished.done() and running.extended_by(before, after):
                # The user typed what the running generation already produced: wait for it.
                me = asyncio.current_task()
                running.owner.waiters.add(me)
                wait_started = time.perf_counter()
                try:
                    await asyncio.shield(running.finished)
                finally:
                    running.owner.waiters.discard(me)
                waited = time.perf_counter() - wait_started
                hit = lookup()
        if hit is not None:
            self._supersede(uri, keep=request)
            done = time.perf_counter()
            outcome = postprocess_outcome(hit.raw, cursor, truncated=hit.reason in ("max_tokens", "unit_end"))
            text = outcome.suggestion
            finished = time.perf_counter()
            timings = {"prompt": (prompt_done - started) * 1000, "lookup": (done - prompt_done - waited) * 1000,
                       "waited": waited * 1000, "generation": 0.0, "postprocess": (finished - done) * 1000}
            self._record_answer(document, offset, hit.generation_id, True, timings)
            if settings.log_prompts:
                log.info("completion from cache: raw=%r shown=%r", hit.raw, text)
            if text is None:
                return NoSuggestion(outcome.why_empty, "cache", hit.tokens)
            return Completion(text.text, offset, hit.tokens, "cache", timings, text.replace_end,
                              hit.generation_id, True)

        if not ids:  # left to right, nothing before the cursor, and the tokenizer adds no BOS
            return NoSuggestion("nothing before the cursor for a left-to-right model to continue", "skipped", 0)
        debounce_started = time.perf_counter()
        if automatic and settings.debounce_ms > 0:
            # Typing: a newer keystroke may follow at once; it would get the model instead.
            await asyncio.sleep(settings.debounce_ms / 1000)
        waited += time.perf_counter() - debounce_started
        if self._latest_seq.get(uri) != request.seq or request.cancel.cancelled:
            # A newer request for this document exists; it does the work (coalescing).
            raise asyncio.CancelledError
        self._supersede(uri, keep=request)
        lookup_done = time.perf_counter()

        generation = _Generation(next(self._generation_ids), request, before, after,
                                 asyncio.get_running_loop().create_future())
        self._running[uri] = generation
        backend_request = GenerationRequest(
            ids, settings.max_new_tokens, settings.temperature, tokenizer.stop_ids(), heal_text=heal_text,
            kv_cache_bytes=settings.kv_cache_mb * 2**20, prompt_lookup_tokens=settings.prompt_lookup_tokens,
            infill=infill_parts(prompt) if settings.remote and prompt.mode != "l2r" else None)
        raw, tokens, reason = "", 0, "max_tokens"
        final = None
        request_cancel = request.cancel
        unit_end = UnitEnd(cursor) if prompt.mode == "l2r" else None
        try:
            async for chunk in runtime.backend.stream(backend_request, request_cancel):
                raw += chunk.text
                tokens = chunk.tokens or tokens
                generation.produced = raw[len(heal_text):] if raw.startswith(heal_text) else ""
                if chunk.stop_reason is not None:
                    reason = chunk.stop_reason
                    final = chunk
                elif scope == "line" and "\n" in generation.produced:
                    request_cancel.cancel()  # the first line is complete: nothing more will be shown
                elif unit_end is not None and unit_end.reached(generation.produced):
                    request_cancel.cancel()  # left to right: the shown unit is over, the rest is cut
        finally:
            if not generation.finished.done():
                generation.finished.set_result(None)
            if self._running.get(uri) is generation:
                del self._running[uri]
            if reason == "cancelled" and unit_end is not None and unit_end.over:
                reason = "unit_end"
            if final is not None and final.ids is not None and greedy:
                cached_reason = "line_end" if reason == "cancelled" and scope == "line" \
                    and "\n" in generation.produced else reason
                self.cache.add(uri, CachedGeneration(list(ids), list(final.ids), cached_reason,
                                                     settings.max_new_tokens, generation.id))
            self._record_generation(document, offset, generation.id, final, reason)
        if reason == "cancelled" and scope == "line" and "\n" in generation.produced:
            reason = "line_end"
        generated = time.perf_counter()
        raw = generation.produced

        outcome = postprocess_outcome(raw, cursor, truncated=reason in ("max_tokens", "unit_end"))
        text = outcome.suggestion
        finished = time.perf_counter()
        timings = {
            "prompt": (prompt_done - started) * 1000,
            "lookup": (lookup_done - prompt_done - waited) * 1000,
            "waited": waited * 1000,
            "generation": (generated - lookup_done) * 1000,
            "postprocess": (finished - generated) * 1000,
        }
        model_ms = (final.seconds if final is not None else 0.0) * 1000
        info = {"latencyMs": round((finished - started) * 1000, 1), "tokens": tokens, "stopReason": reason,
                "promptTokens": len(prompt.ids), "promptMode": prompt.mode, "timingsMs": timings, "modelMs": round(model_ms, 1),
                "reusedTokens": final.reused_tokens if final is not None else 0, "healed": bool(heal_text)}
        self._on_generated(info)
        self._record_answer(document, offset, generation.id, False, timings)
        log.info("generated %d tokens in %.0f ms (%s)", tokens, info["latencyMs"], reason)
        if settings.log_prompts:
            log.info("completion: raw=%r shown=%r", raw, text)
        if reason == "cancelled":
            return NoSuggestion("cancelled", reason, tokens)
        if text is None:
            return NoSuggestion(outcome.why_empty, reason, tokens)
        return Completion(text.text, offset, tokens, reason, timings, text.replace_end, generation.id)

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
