"""The tasks through the server's own pipeline, once per variant.

One ``RuntimeManager`` loads the model once: the variants' settings (context on or off, PSM or
SPM) are not part of its key, so its settings callable returns the current variant's. Each task
gets a fresh ``CompletionEngine`` and ``ContextEngine``, built as ``cli._pipeline`` builds them:
their memo tables are keyed by URI, and every task cut from one file has that file's URI, so a
shared engine could answer a task from another task's text. Fresh engines keep each answer a
function of its task and settings alone, which is also what lets a cached answer stand for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from code_llama_ls.completion.engine import CompletionEngine, NoSuggestion
from code_llama_ls.context.engine import ContextEngine
from code_llama_ls.documents import Document, DocumentStore
from code_llama_ls.eval.cache import ResultCache, model_key, repository_digest, run_key
from code_llama_ls.eval.metrics import Outcome
from code_llama_ls.eval.tasks import SourceFile, Task
from code_llama_ls.runtime.manager import RuntimeEvents, RuntimeManager
from code_llama_ls.settings import Settings

CAPABILITIES = "capabilities"
"""The cache entry, by model key, that says whether the model infills (a cached run loads nothing)."""


@dataclass(frozen=True)
class Variant:
    context: bool
    mode: str  # "psm", "spm", or "l2r" for a model that does not infill

    @property
    def name(self) -> str:
        return f"{'context' if self.context else 'no-context'}/{self.mode}"

    def settings(self, base: Settings) -> Settings:
        return base.model_copy(update={"context_enabled": self.context,
                                       "fim_mode": "psm" if self.mode == "l2r" else self.mode})


def variants(infilling: bool, fim_mode: str) -> list[Variant]:
    """Context on and off; for a model that infills, PSM and SPM (``fim_mode`` ``auto``) or the
    one order named; for one that does not, its left-to-right prompt."""
    modes = (("psm", "spm") if fim_mode == "auto" else (fim_mode,)) if infilling else ("l2r",)
    return [Variant(context, mode) for context in (True, False) for mode in modes]


@dataclass(frozen=True)
class Result:
    task: Task
    variant: str
    outcome: Outcome
    from_cache: bool


class Runner:
    def __init__(self, base: Settings, root: Path, files: Sequence[SourceFile], cache: ResultCache | None,
                 events: RuntimeEvents) -> None:
        self._base = base
        self._current = base
        self._root = root
        self._cache = cache
        self._model_key = model_key(base)
        self._repository = repository_digest(files)
        self.runtime = RuntimeManager(lambda: self._current, events)

    async def infilling(self) -> bool:
        """Whether the model infills; loads it unless a cached run said so."""
        cached = self._cache.get(self._model_key, CAPABILITIES) if self._cache is not None else None
        if cached is not None and isinstance(cached.get("infilling"), bool):
            return cached["infilling"]
        runtime = await self.runtime.get()
        infilling = runtime.capabilities.infilling
        if self._cache is not None:
            self._cache.put(self._model_key, CAPABILITIES, {"infilling": infilling})
        return infilling

    async def result(self, task: Task, variant: Variant) -> Result:
        key = run_key(self._model_key, variant.name, self._repository if variant.context else None)
        cached = self._cached(key, task)
        if cached is not None:
            return Result(task, variant.name, cached, True)
        settings = variant.settings(self._base)
        self._current = settings
        await self.runtime.get()  # loaded before the clock starts: latency is the request's
        context = ContextEngine(lambda: settings, DocumentStore(), [self._root])
        engine = CompletionEngine(self.runtime.get, lambda: settings, context=context)
        document = Document((self._root / task.path).as_uri(), task.document, 1)
        started = time.perf_counter()
        answer = await engine.suggest(document, task.cursor, automatic=False)
        latency_ms = (time.perf_counter() - started) * 1000
        if isinstance(answer, NoSuggestion):
            outcome = Outcome("", 0, answer.stop_reason, answer.tokens, latency_ms, answer.reason)
        else:
            outcome = Outcome(answer.text, answer.replace_end, answer.stop_reason, answer.tokens, latency_ms)
        if self._cache is not None:
            self._cache.put(key, task.id, asdict(outcome))
        return Result(task, variant.name, outcome, False)

    def _cached(self, key: str, task: Task) -> Outcome | None:
        value = self._cache.get(key, task.id) if self._cache is not None else None
        try:
            return Outcome(**value) if value is not None else None
        except TypeError:  # written by another version: a miss
            return None

    async def close(self) -> None:
        await self.runtime.close()


async def evaluate(runner: Runner, tasks: Sequence[Task], chosen: Sequence[Variant],
                   step: Callable[[], None] = lambda: None) -> list[Result]:
    """Every task under every variant, task by task (an interrupted run has compared the
    variants on the same tasks)."""
    results = []
    for task in tasks:
        for variant in chosen:
            results.append(await runner.result(task, variant))
            step()
    return results
