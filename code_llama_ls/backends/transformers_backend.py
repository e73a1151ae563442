"""In-process generation with transformers and torch (CPU, CUDA, MPS).

torch is imported only here and only when the model loads. Generation runs on one worker
thread (one model, one generation at a time) with its own decoding loop, so it can stop within
one step when cancelled and stream text as it goes; the event loop only awaits a queue.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import sys
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from code_llama_ls.backends.base import (
    BackendError,
    BackendStatus,
    CancelToken,
    Chunk,
    GenerationRequest,
    ProgressCallback,
    StopReason,
)
from code_llama_ls.backends.prefix_cache import PrefixCache, bytes_per_token
from code_llama_ls.completion.cache import piece_texts
from code_llama_ls.model_files import PARAMETERS, find_gguf, gguf_metadata
from code_llama_ls.prompts.tokenization import ModelTokenizer

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
log = logging.getLogger(__name__)

MODEL_THREAD_NICENESS = 10
"""How much lower than the event loop the model's threads run on the CPU. torch's worker
threads (created by the generation thread, so they inherit it) would otherwise take both cores
of a small machine from document sync and prompt building: with the model generating, that work
took 2.5 ms at the median instead of 0.8 on 2 cores; at niceness 10 it is back to idle speed."""


def _lower_thread_priority() -> None:
    if sys.platform.startswith("linux"):  # per-thread niceness: a Linux thread id is a task id
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), MODEL_THREAD_NICENESS)
        except OSError:  # not allowed here: run at the process's priority
            pass


def pick_device(requested: str) -> str:
    """cuda → mps → cpu for ``auto``; an explicit device must exist."""
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise BackendError(f"device {requested!r} requested but CUDA is not available")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise BackendError("device 'mps' requested but MPS is not available")
    return requested


def pick_dtype(requested: str, device: str) -> Any:
    import torch

    if requested != "auto":
        return getattr(torch, requested)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32


DEFAULT_KV_CACHE_BYTES = 1024 * 2**20
LARGE_DEQUANTISED_BYTES = 4 * 2**30
"""A GGUF whose weights take this much or more once transformers dequantises them is warned about."""


class TransformersBackend:
    name = "transformers"
    supports_healing = True

    def __init__(
        self,
        model: str,
        tokenizer: ModelTokenizer,
        *,
        device: str = "auto",
        dtype: str = "auto",
        local_files_only: bool = False,
    ) -> None:
        self.model_name = model
        self.tokenizer = tokenizer
        self._requested_device = device
        self._requested_dtype = dtype
        self._local_files_only = local_files_only
        self._model: Any = None
        self._device: str | None = None
        self._state: str = "idle"
        self._message = ""
        self._load_lock = asyncio.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="code-llama-generate",
                                          initializer=_lower_thread_priority)
        self._prefix_cache = PrefixCache(DEFAULT_KV_CACHE_BYTES, 1)
        self._pieces: list[str] | None = None
        self._heal_memo: dict[str, list[int]] = {}
        self.warnings: list[str] = []  # said while loading (a large dequantised GGUF), kept for the status

    # -- protocol --------------------------------------------------------------------------

    @property
    def device_type(self) -> str:
        return (self._device or "cpu").split(":", 1)[0]

    def status(self) -> BackendStatus:
        return BackendStatus(self._state, self.model_name, self._device, self._message)  # type: ignore[arg-type]

    def cache_stats(self) -> dict[str, dict]:
        return {"kv": self._prefix_cache.stats()}

    async def load(self, progress: ProgressCallback) -> None:
        async with self._load_lock:
            if self._model is not None:
                return
            self._state, self._message = "loading", f"loading {self.model_name}"
            try:
                await asyncio.get_running_loop().run_in_executor(self._worker, self._load_blocking, progress)
            except BackendError as exc:
                self._state, self._message = "error", str(exc)
                raise
            except Exception as exc:  # anything torch/transformers throws while loading
                self._state, self._message = "error", f"cannot load model {self.model_name!r}: {exc}"
                raise BackendError(self._message) from exc
            self._state, self._message = "ready", "; ".join([f"{self.model_name} on {self._device}", *self.warnings])

    async def stream(self, request: GenerationRequest, cancel: CancelToken) -> AsyncIterator[Chunk]:
        if self._model is None:
            raise BackendError(f"model {self.model_name!r} is not loaded")
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Chunk | BaseException] = asyncio.Queue()

        def emit(item: Chunk | BaseException) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        loop.run_in_executor(self._worker, self._generate_blocking, request, cancel, emit)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise BackendError(f"generation failed: {item}") from item
                yield item
                if item.stop_reason is not None:
                    break
        finally:
            # Stop the worker within one step if the consumer went away (cancelled request).
            cancel.cancel()

    async def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
        self._prefix_cache.clear()
        self._model = None

    @property
    def prefix_cache(self) -> PrefixCache:
        return self._prefix_cache

    def _not_found(self, exc: OSError) -> str:
        """One line: transformers' message has a second one, and under local files only it speaks
        of a connection that was never tried."""
        if self._local_files_only:
            return (f"model {self.model_name!r} is not in the local cache, and downloads are off "
                    "(--local-files-only / `localFilesOnly`)")
        first_line = str(exc).strip().split("\n", 1)[0]
        return f"model {self.model_name!r} not found locally or on the Hugging Face hub: {first_line}"

    # -- worker thread ---------------------------------------------------------------------

    def _load_blocking(self, progress: ProgressCallback) -> None:
        import torch
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # progress goes to the client as $/progress instead

        device = pick_device(self._requested_device)
        dtype = pick_dtype(self._requested_dtype, device)
        progress(f"loading {self.model_name} ({dtype}) on {device}", 10)
        source, options = self.model_name, {}
        gguf = find_gguf(self.model_name)
        if gguf is not None:  # transformers dequantises it to ``dtype``
            source, options = str(gguf.parent), {"gguf_file": gguf.name}
            self._warn_if_large(gguf, torch.tensor([], dtype=dtype).element_size(), progress)
        try:
            model = AutoModelForCausalLM.from_pretrained(
                source, dtype=dtype, local_files_only=self._local_files_only, **options
            )
        except OSError as exc:
            raise BackendError(self._not_found(exc)) from exc
        except ImportError as exc:
            raise BackendError(f"loading {self.model_name!r} needs {exc}; the [local] extra installs gguf and "
                               "accelerate") from exc
        except ValueError as exc:
            if gguf is None:
                raise
            architecture = gguf_metadata(gguf).get("general.architecture", "unknown")
            raise BackendError(f"transformers cannot load {gguf.name} (architecture {architecture!r}): "
                               f"{str(exc).splitlines()[0]}") from exc
        progress(f"moving {self.model_name} to {device}", 80)
        model.to(device)
        model.eval()
        if model.config.vocab_size < self.tokenizer.vocab_size:
            raise BackendError(
                f"model {self.model_name!r} has {model.config.vocab_size} embeddings but its tokenizer "
                f"has {self.tokenizer.vocab_size} tokens; choose a matching tokenizer"
            )
        self._cache_argument = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        self._model = model
        self._device = device
        element = torch.tensor([], dtype=next(model.parameters()).dtype).element_size()
        self._prefix_cache = PrefixCache(self._prefix_cache.capacity_bytes, bytes_per_token(model.config, element))
        torch.set_grad_enabled(False)
        progress(f"{self.model_name} ready on {device}", 100)

    def _warn_if_large(self, gguf: Path, element_size: int, progress: ProgressCallback) -> None:
        """A quantised file grows to its dequantised size in memory: say so when that is large."""
        size = gguf_metadata(gguf)[PARAMETERS] * element_size
        if size >= LARGE_DEQUANTISED_BYTES:
            message = (f"{gguf.name} ({gguf.stat().st_size / 2**30:.1f} GiB on disk) takes about "
                       f"{size / 2**30:.1f} GiB dequantised for transformers")
            self.warnings.append(message)
            log.warning("%s", message)
            progress(message, None)

    def _generate_blocking(self, request: GenerationRequest, cancel: CancelToken, emit) -> None:
        try:
            emit_final = self._decode_loop(request, cancel, emit)
            emit(emit_final)
        except BaseException as exc:  # reported to the awaiting coroutine, never lost
            emit(exc)

    def _decode_loop(self, request: GenerationRequest, cancel: CancelToken, emit) -> Chunk:
        import torch
        from transformers import DynamicCache

        started = time.perf_counter()
        model = self._model
        prompt = list(request.prompt_ids)
        cache_kw = {self._cache_argument: None}
        prefix_cache = self._prefix_cache
        if request.kv_cache_bytes is not None:
            prefix_cache.capacity_bytes = request.kv_cache_bytes
            prefix_cache.evict()
        cache, reused = prefix_cache.take(prompt) if prefix_cache.capacity_bytes > 0 else (None, 0)
        if cache is None:
            cache = DynamicCache(config=model.config)
        fed: list[int] = prompt[:reused]  # the positions the cache holds
        evaluated = 0
        generated: list[int] = []
        shown = ""
        reason: StopReason = "max_tokens"
        greedy = request.temperature <= 0
        generator = None if greedy else torch.Generator(device="cpu").manual_seed(0)
        remaining = request.heal_text  # token healing: text the next tokens must spell first
        lookup = request.prompt_lookup_tokens if greedy else 0

        def forward(ids: list[int], keep: int):
            nonlocal evaluated
            evaluated += len(ids)
            cache_kw[self._cache_argument] = cache
            out = model(input_ids=torch.tensor([ids], device=self._device), use_cache=True,
                        logits_to_keep=keep, **cache_kw).logits[0]
            fed.extend(ids)
            return out

        def accept(token: int) -> None:
            nonlocal shown
            generated.append(token)
            text = self.tokenizer.decode_infilling(generated)
            if not text.endswith("\ufffd") and text.startswith(shown) and len(text) > len(shown):
                emit(Chunk(text[len(shown):], len(generated)))
                shown = text

        try:
            with torch.inference_mode():
                if cancel.cancelled:
                    return Chunk("", 0, "cancelled", len(prompt), time.perf_counter() - started, [], reused, 0)
                logits = forward(prompt[reused:], 1)[-1]
                while len(generated) < request.max_new_tokens:
                    if cancel.cancelled:
                        reason = "cancelled"
                        break
                    if remaining:
                        token, remaining = self._pick_healed(logits, remaining, request.temperature, generator)
                    else:
                        token = _pick(logits, request.temperature, generator)
                    if token in request.stop_ids:
                        reason = "eot"
                        break
                    accept(token)
                    if len(generated) >= request.max_new_tokens:
                        break  # the last token is never fed: nothing would read its logits
                    draft = _draft(fed + [token], lookup, request.stop_ids,
                                   request.max_new_tokens - len(generated)) if lookup and not remaining else []
                    out = forward([token, *draft], len(draft) + 1)
                    if not draft:
                        logits = out[-1]
                        continue
                    predicted = out.argmax(dim=-1).tolist()  # predicted[j]: the token after input j
                    accepted = 0
                    while accepted < len(draft) and predicted[accepted] == draft[accepted]:
                        accept(draft[accepted])
                        accepted += 1
                    rejected = len(draft) - accepted
                    if rejected:
                        cache.crop(-rejected)
                        del fed[len(fed) - rejected:]
                    logits = out[accepted]
        finally:
            if cache.get_seq_length() == len(fed) and fed:
                prefix_cache.put(fed, cache)
        text = self.tokenizer.decode_infilling(generated)
        tail = text[len(shown):] if text.startswith(shown) else ""
        return Chunk(tail, len(generated), reason, len(prompt), time.perf_counter() - started, generated, reused,
                     evaluated)

    def _pick_healed(self, logits: Any, remaining: str, temperature: float, generator: Any) -> tuple[int, str]:
        """The best token consistent with the backed-off text: it starts with ``remaining``, or
        is a non-empty start of it (then the rest stays to be spelled)."""
        import torch

        candidates = self._heal_candidates(remaining)
        if not candidates:  # cannot happen for text that came from a token; generate freely
            return _pick(logits, temperature, generator), ""
        index = torch.tensor(candidates, device=logits.device)
        masked = torch.full_like(logits, float("-inf"))
        masked[index] = logits[index]
        token = _pick(masked, temperature, generator)
        text = self.pieces()[token]
        return token, ("" if text.startswith(remaining) else remaining[len(text):])

    def _heal_candidates(self, remaining: str) -> list[int]:
        found = self._heal_memo.get(remaining)
        if found is None:
            found = [i for i, text in enumerate(self.pieces())
                     if text and (text.startswith(remaining) or remaining.startswith(text))]
            if len(self._heal_memo) > 4096:
                self._heal_memo.clear()
            self._heal_memo[remaining] = found
        return found

    def pieces(self) -> list[str]:
        """Each token's text as decode_infilling shows it ("" for control tokens)."""
        if self._pieces is None:
            self._pieces = piece_texts(self.tokenizer)
        return self._pieces


def _draft(sequence: list[int], count: int, stop_ids: frozenset[int], room: int) -> list[int]:
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


def _pick(logits: Any, temperature: float, generator: Any) -> int:
    import torch

    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.float() / temperature, dim=-1).cpu()
    return int(torch.multinomial(probs, 1, generator=generator))
