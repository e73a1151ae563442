"""In-process generation with transformers and torch (CPU, CUDA, MPS).

torch is imported only here and only when the model loads. Generation runs on one worker
thread (one model, one generation at a time) with its own decoding loop, so it can stop within
one step when cancelled and stream text as it goes; the event loop only awaits a queue.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
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
from code_llama_ls.prompts.tokenization import InfillTokenizer

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


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


class TransformersBackend:
    name = "transformers"

    def __init__(
        self,
        model: str,
        tokenizer: InfillTokenizer,
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
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="code-llama-generate")

    # -- protocol --------------------------------------------------------------------------

    @property
    def device_type(self) -> str:
        return (self._device or "cpu").split(":", 1)[0]

    def status(self) -> BackendStatus:
        return BackendStatus(self._state, self.model_name, self._device, self._message)  # type: ignore[arg-type]

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
            self._state, self._message = "ready", f"{self.model_name} on {self._device}"

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
        self._model = None

    # -- worker thread ---------------------------------------------------------------------

    def _load_blocking(self, progress: ProgressCallback) -> None:
        import torch
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # progress goes to the client as $/progress instead

        device = pick_device(self._requested_device)
        dtype = pick_dtype(self._requested_dtype, device)
        progress(f"loading {self.model_name} ({dtype}) on {device}", 10)
        try:
            model = AutoModelForCausalLM.from_pretrained(
                self.model_name, dtype=dtype, local_files_only=self._local_files_only
            )
        except OSError as exc:
            where = "in the local cache or folder" if self._local_files_only else "locally or on the Hugging Face hub"
            raise BackendError(f"model {self.model_name!r} not found {where}: {exc}") from exc
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
        torch.set_grad_enabled(False)
        progress(f"{self.model_name} ready on {device}", 100)

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
        generated: list[int] = []
        shown = ""
        reason: StopReason = "max_tokens"
        generator = torch.Generator(device="cpu").manual_seed(0) if request.temperature > 0 else None
        with torch.inference_mode():
            cache = DynamicCache(config=model.config)
            ids = torch.tensor([request.prompt_ids], device=self._device)
            if cancel.cancelled:
                return Chunk("", 0, "cancelled", len(request.prompt_ids), time.perf_counter() - started)
            logits = model(input_ids=ids, use_cache=True, logits_to_keep=1, **{self._cache_argument: cache}).logits[0, -1]
            for _ in range(request.max_new_tokens):
                if cancel.cancelled:
                    reason = "cancelled"
                    break
                token = _pick(logits, request.temperature, generator)
                if token in request.stop_ids:
                    reason = "eot"
                    break
                generated.append(token)
                text = self.tokenizer.decode_infilling(generated)
                if not text.endswith("\ufffd") and text.startswith(shown) and len(text) > len(shown):
                    emit(Chunk(text[len(shown):], len(generated)))
                    shown = text
                step = torch.tensor([[token]], device=self._device)
                logits = model(input_ids=step, use_cache=True, **{self._cache_argument: cache}).logits[0, -1]
        text = self.tokenizer.decode_infilling(generated)
        tail = text[len(shown):] if text.startswith(shown) else ""
        return Chunk(tail, len(generated), reason, len(request.prompt_ids), time.perf_counter() - started)


def _pick(logits: Any, temperature: float, generator: Any) -> int:
    import torch

    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.float() / temperature, dim=-1).cpu()
    return int(torch.multinomial(probs, 1, generator=generator))
