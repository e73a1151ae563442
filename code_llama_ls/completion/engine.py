"""The completion pipeline: document → prompt → backend → post-processing.

It also owns what makes a language server usable while a model is slow: one generation shared
by requests for the same document version and position, a newer request for a document
superseding (and stopping) the older one, and a cancelled request stopping its generation
within one decoding step.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from code_llama_ls.backends.base import Backend, BackendError, CancelToken, GenerationRequest
from code_llama_ls.completion.postprocess import CursorContext, postprocess
from code_llama_ls.context.engine import ContextEngine, comment_prefix
from code_llama_ls.context.syntax import completion_scope
from code_llama_ls.documents import Document
from code_llama_ls.prompts.fim import Budget, FimMode, InfillPrompt, build_infill_prompt
from code_llama_ls.prompts.tokenization import InfillTokenizer
from code_llama_ls.settings import Settings

log = logging.getLogger(__name__)

class CompletionSkipped(Exception):
    """No completion for a reason worth logging (disabled language, ignored file, no model …)."""


@dataclass(frozen=True)
class Completion:
    text: str
    offset: int  # where the text is inserted (the cursor)
    tokens: int
    stop_reason: str
    timings_ms: dict[str, float]
    replace_end: int = 0  # characters after the cursor, on its line, that the text replaces


@dataclass
class _Generation:
    key: tuple[str, int, int]
    cancel: CancelToken
    task: asyncio.Task | None = None
    waiters: set[asyncio.Task] = field(default_factory=set)


@dataclass
class Runtime:
    """A loaded tokenizer and backend for one group of model settings."""

    tokenizer: InfillTokenizer
    backend: Backend


def fim_mode(settings: Settings) -> FimMode:
    return "spm" if settings.fim_mode == "spm" else "psm"


def build_prompt(document: Document, offset: int, tokenizer: InfillTokenizer, settings: Settings,
                 device_type: str, context: ContextEngine | None = None) -> InfillPrompt:
    """The prompt at ``offset``: the document around the cursor, and context packed before it."""
    budget = Budget(settings.context_tokens_for(device_type), settings.max_new_tokens, settings.prefix_ratio)
    blocks = context.collect(document, offset) if context is not None else []
    return build_infill_prompt(
        tokenizer, document.text[:offset], document.text[offset:], budget, fim_mode(settings),
        context=blocks, comment_prefix=comment_prefix(document.language),
    )


class CompletionEngine:
    def __init__(self, runtime: Callable[[], "asyncio.Future[Runtime] | asyncio.Task[Runtime]"],
                 settings: Callable[[], Settings],
                 on_generated: Callable[[dict], None] = lambda info: None,
                 context: ContextEngine | None = None) -> None:
        self._runtime = runtime
        self.context = context
        self._settings = settings
        self._on_generated = on_generated
        self._generations: dict[tuple[str, int, int], _Generation] = {}
        self._latest_by_uri: dict[str, _Generation] = {}

    def check_allowed(self, document: Document) -> None:
        settings = self._settings()
        if "*" not in settings.enabled_languages and document.language not in settings.enabled_languages \
                and document.language_id not in settings.enabled_languages:
            raise CompletionSkipped(f"completions are disabled for language {document.language_id or document.language}")
        if self.context is not None and self.context.is_ignored(document.uri):
            raise CompletionSkipped("file matches an ignore rule; it never goes into a prompt")
        if document.too_large:
            raise CompletionSkipped("document too large for completions")

    async def complete(self, document: Document, offset: int) -> Completion | None:
        """The suggestion at ``offset``; cancelled (CancelledError) when superseded."""
        self.check_allowed(document)
        key = (document.uri, document.version, offset)
        generation = self._generations.get(key)
        if generation is None:
            self._supersede(document.uri)
            generation = _Generation(key, CancelToken())
            generation.task = asyncio.ensure_future(self._run(generation, document, offset))
            self._generations[key] = generation
            self._latest_by_uri[document.uri] = generation
            generation.task.add_done_callback(lambda _: self._forget(generation))
        me = asyncio.current_task()
        if me is not None:
            generation.waiters.add(me)
        try:
            return await asyncio.shield(generation.task)
        except asyncio.CancelledError:
            if me is not None:
                generation.waiters.discard(me)
            if not generation.waiters:
                generation.cancel.cancel()
            raise
        finally:
            if me is not None:
                generation.waiters.discard(me)

    def _supersede(self, uri: str) -> None:
        older = self._latest_by_uri.get(uri)
        if older is not None and older.task is not None and not older.task.done():
            older.cancel.cancel()
            for waiter in list(older.waiters):
                waiter.cancel()

    def _forget(self, generation: _Generation) -> None:
        if self._generations.get(generation.key) is generation:
            del self._generations[generation.key]
        if self._latest_by_uri.get(generation.key[0]) is generation:
            del self._latest_by_uri[generation.key[0]]
        if generation.task is not None and not generation.task.cancelled():
            generation.task.exception()  # retrieved: errors were already reported to waiters

    async def _run(self, generation: _Generation, document: Document, offset: int) -> Completion | None:
        settings = self._settings()
        runtime = await self._runtime()
        started = time.perf_counter()
        # Snapshot what the pipeline needs: the document may change while we generate.
        scope = completion_scope(document, offset)
        cursor = CursorContext.at(document, offset, scope)
        prompt = build_prompt(document, offset, runtime.tokenizer, settings, runtime.backend.device_type,
                              self.context)
        prompt_done = time.perf_counter()
        if settings.log_prompts:
            log.info("prompt for %s: prefix=%r suffix=%r", document.uri, prompt.prefix, prompt.suffix)

        request = GenerationRequest(prompt.ids, settings.max_new_tokens, settings.temperature,
                                    runtime.tokenizer.stop_ids())
        raw, tokens, reason = "", 0, "max_tokens"
        async for chunk in runtime.backend.stream(request, generation.cancel):
            raw += chunk.text
            tokens = chunk.tokens or tokens
            if chunk.stop_reason is not None:
                reason = chunk.stop_reason
            elif scope == "line" and "\n" in raw:
                generation.cancel.cancel()  # the first line is complete: nothing more will be shown
        if reason == "cancelled" and scope == "line" and "\n" in raw:
            reason = "line_end"
        generated = time.perf_counter()

        text = postprocess(raw, cursor)
        finished = time.perf_counter()
        timings = {
            "prompt": (prompt_done - started) * 1000,
            "generation": (generated - prompt_done) * 1000,
            "postprocess": (finished - generated) * 1000,
        }
        info = {"latencyMs": round((finished - started) * 1000, 1), "tokens": tokens, "stopReason": reason,
                "promptTokens": len(prompt.ids), "timingsMs": timings}
        self._on_generated(info)
        log.info("generated %d tokens in %.0f ms (%s)", tokens, info["latencyMs"], reason)
        if settings.log_prompts:
            log.info("completion: raw=%r shown=%r", raw, text)
        if reason == "cancelled" or text is None:
            return None
        return Completion(text.text, offset, tokens, reason, timings, text.replace_end)


__all__ = ["BackendError", "Completion", "CompletionEngine", "CompletionSkipped", "Runtime", "build_prompt"]
