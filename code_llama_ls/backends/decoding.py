"""What both in-process engines do around the model's forward pass, with no tensor library:
loading and generating on one model thread at lower priority (``WorkerEngine``), prompt-lookup
drafts, and the token-healing vocabulary.

The transformers and llama.cpp engines each run their own decoding loop over their own logits;
these pieces take and return plain ids and texts so both loops make the same choices.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

from code_llama_ls.backends.base import BackendError, CancelToken, Chunk, GenerationRequest, ProgressCallback
from code_llama_ls.prompts.tokenization import ModelTokenizer, piece_texts

MODEL_THREAD_NICENESS = 10
"""How much lower than the event loop the model's threads run on the CPU. The engine's worker
threads (created by the generation thread, so they inherit it) would otherwise take both cores
of a small machine from document sync and prompt building: with the model generating, that work
took 2.5 ms at the median instead of 0.8 on 2 cores; at niceness 10 it is back to idle speed."""


def lower_thread_priority() -> None:
    if sys.platform.startswith("linux"):  # per-thread niceness: a Linux thread id is a task id
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), MODEL_THREAD_NICENESS)
        except OSError:  # not allowed here: run at the process's priority
            pass


def model_worker() -> ThreadPoolExecutor:
    """The one thread a model is loaded and run on (one generation at a time), at lower priority."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="code-llama-generate",
                              initializer=lower_thread_priority)


Emit = Callable[[Chunk | BaseException], None]


async def stream_from_worker(worker: ThreadPoolExecutor, generate: Callable[[GenerationRequest, CancelToken, Emit], None],
                             request: GenerationRequest, cancel: CancelToken) -> AsyncIterator[Chunk]:
    """Run ``generate`` on the model's worker thread and yield the chunks it emits, the event loop
    only awaiting a queue; its exception becomes a ``BackendError``. A consumer that goes away
    (a cancelled request) cancels the generation, which stops within one step."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Chunk | BaseException] = asyncio.Queue()

    def emit(item: Chunk | BaseException) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    loop.run_in_executor(worker, generate, request, cancel, emit)
    try:
        while True:
            item = await queue.get()
            if isinstance(item, BaseException):
                raise BackendError(f"generation failed: {item}") from item
            yield item
            if item.stop_reason is not None:
                break
    finally:
        cancel.cancel()


class WorkerEngine:
    """An in-process engine's part of the backend protocol: the model loads, and generates one
    request at a time, on its own thread (``model_worker``) while the event loop only awaits it.
    An engine says whether it is loaded, loads and generates on that thread, and how it is ready."""

    def __init__(self, model: str, tokenizer: ModelTokenizer) -> None:
        self.model_name = model
        self.tokenizer = tokenizer
        self._state, self._message = "idle", ""
        self._load_lock = asyncio.Lock()
        self._worker = model_worker()
        self._vocabulary = HealingVocabulary(tokenizer)

    def _loaded(self) -> bool:
        raise NotImplementedError

    def _load_blocking(self, progress: ProgressCallback) -> None:
        raise NotImplementedError

    def _generate_blocking(self, request: GenerationRequest, cancel: CancelToken, emit: Emit) -> None:
        raise NotImplementedError

    def _on_loaded(self) -> str:
        """What follows a load (on the event loop); returns what the status says."""
        raise NotImplementedError

    async def load(self, progress: ProgressCallback) -> None:
        async with self._load_lock:
            if self._loaded():
                return
            self._state, self._message = "loading", f"loading {self.model_name}"
            try:
                await asyncio.get_running_loop().run_in_executor(self._worker, self._load_blocking, progress)
            except BackendError as exc:
                self._state, self._message = "error", str(exc)
                raise
            except Exception as exc:  # whatever torch, transformers or llama.cpp's bindings raise
                self._state, self._message = "error", f"cannot load model {self.model_name!r}: {exc}"
                raise BackendError(self._message) from exc
            self._state, self._message = "ready", self._on_loaded()

    async def stream(self, request: GenerationRequest, cancel: CancelToken) -> AsyncIterator[Chunk]:
        if not self._loaded():
            raise BackendError(f"model {self.model_name!r} is not loaded")
        # Closed with this generator, so that a consumer going away cancels the generation at once.
        async with contextlib.aclosing(stream_from_worker(self._worker, self._generate_blocking, request, cancel)) as chunks:
            async for chunk in chunks:
                yield chunk


def prompt_lookup_draft(sequence: list[int], count: int, stop_ids: frozenset[int], room: int) -> list[int]:
    """Prompt-lookup draft: the tokens that followed the latest earlier occurrence of the
    sequence's last 3 (else 2) tokens, up to ``count`` and ``room - 1`` (never a stop token)."""
    count = min(count, room - 1)
    if count <= 0:
        return []
    for n in (3, 2):
        if len(sequence) <= n:
            continue
        pattern = sequence[-n:]
        first = pattern[0]
        for start in range(len(sequence) - n - 1, -1, -1):
            if sequence[start] == first and sequence[start:start + n] == pattern:
                draft = sequence[start + n:start + n + count]
                for i, token in enumerate(draft):
                    if token in stop_ids:
                        return draft[:i]
                return draft
    return []


class HealingVocabulary:
    """Which tokens may come next while healing: those whose text starts with the backed-off
    text, or is a non-empty start of it (then the rest stays to be spelled)."""

    def __init__(self, tokenizer: ModelTokenizer) -> None:
        self._tokenizer = tokenizer
        self._pieces: list[str] | None = None
        self._memo: dict[str, list[int]] = {}

    def pieces(self) -> list[str]:
        """Each token's text as decode_infilling shows it ("" for control tokens)."""
        if self._pieces is None:
            self._pieces = piece_texts(self._tokenizer)
        return self._pieces

    def candidates(self, remaining: str) -> list[int]:
        found = self._memo.get(remaining)
        if found is None:
            found = [i for i, text in enumerate(self.pieces())
                     if text and (text.startswith(remaining) or remaining.startswith(text))]
            if len(self._memo) > 4096:
                self._memo.clear()
            self._memo[remaining] = found
        return found

    def still_to_spell(self, token: int, remaining: str) -> str:
        """What of ``remaining`` the next tokens must still spell once ``token`` is chosen."""
        text = self.pieces()[token]
        return "" if text.startswith(remaining) else remaining[len(text):]
