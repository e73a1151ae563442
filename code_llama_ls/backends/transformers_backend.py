"""In-process generation with transformers and torch (CPU, CUDA, MPS).

torch is imported only here and only when the model loads. Generation runs on one worker
thread (one model, one generation at a time) with its own decoding loop, so it can stop within
one step when cancelled and stream text as it goes; the event loop only awaits a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import time
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
from code_llama_ls.backends.compiled_decode import CompiledDecoder, compiles_by_default
from code_llama_ls.backends.decoding import WorkerEngine, prompt_lookup_draft
from code_llama_ls.backends.prefix_cache import PrefixCache, bytes_per_token
from code_llama_ls.model_files import PARAMETERS, find_gguf, gguf_metadata
from code_llama_ls.prompts.tokenization import ModelTokenizer
from code_llama_ls.settings import CPU_CONTEXT_TOKENS, GPU_CONTEXT_TOKENS

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
log = logging.getLogger(__name__)

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


class TransformersBackend(WorkerEngine):
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
        compile_mode: str = "auto",
        context_tokens: int | None = None,
    ) -> None:
        super().__init__(model, tokenizer)
        self._requested_device = device
        self._requested_dtype = dtype
        self._local_files_only = local_files_only
        self._model: Any = None
        self._device: str | None = None
        self._prefix_cache = PrefixCache(DEFAULT_KV_CACHE_BYTES, 1)
        self.warnings: list[str] = []  # said while loading (a large dequantised GGUF), kept for the status
        self._compile_mode = compile_mode
        self._context_tokens = context_tokens
        self._compiled: CompiledDecoder | None = None

    # -- protocol --------------------------------------------------------------------------

    @property
    def device_type(self) -> str:
        return (self._device or "cpu").split(":", 1)[0]

    def status(self) -> BackendStatus:
        compiled = self._compiled
        extra = {"engine": "transformers", "compiledDecode": compiled.state if compiled else "off"}
        message = "; ".join(m for m in (self._message, compiled.message if compiled else "") if m)
        return BackendStatus(self._state, self.model_name, self._device, message, extra)  # type: ignore[arg-type]

    async def compiled_ready(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the compiled decode step; whether it is in use."""
        compiled = self._compiled
        return compiled is not None and await asyncio.to_thread(compiled.wait, timeout_s)

    def cache_stats(self) -> dict[str, dict]:
        compiled = self._compiled
        return {"kv": compiled.stats() if compiled is not None and compiled.ready else self._prefix_cache.stats()}

    def _loaded(self) -> bool:
        return self._model is not None

    def _on_loaded(self) -> str:
        self._start_compiling()
        return "; ".join([f"{self.model_name} on {self._device}", *self.warnings])

    def _start_compiling(self) -> None:
        """``compile``: build the compiled decode step in the background (``auto``: where measured faster)."""
        parameters = list(self._model.parameters())
        weight_bytes = sum(p.numel() * p.element_size() for p in parameters)
        wanted = self._compile_mode == "on" or (
            self._compile_mode == "auto" and compiles_by_default(self._device, parameters[0].dtype, weight_bytes))
        if wanted:
            tokens = self._context_tokens or (CPU_CONTEXT_TOKENS if self.device_type == "cpu" else GPU_CONTEXT_TOKENS)
            self._compiled = CompiledDecoder(self._model, self._device, self._cache_argument, tokens,
                                             self._prefix_cache.bytes_per_token)
            self._compiled.start()

    async def close(self) -> None:
        if self._compiled is not None:
            await asyncio.to_thread(self._compiled.abandon)
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
        compiled = self._compiled
        try:
            with compiled.serving() if compiled is not None else contextlib.nullcontext():
                emit_final = self._decode_loop(request, cancel, emit)
            emit(emit_final)
        except BaseException as exc:  # reported to the awaiting coroutine, never lost
            emit(exc)

    def _decode_loop(self, request: GenerationRequest, cancel: CancelToken, emit) -> Chunk:
        import torch

        started = time.perf_counter()
        model = self._model
        prompt = list(request.prompt_ids)
        cache_kw = {self._cache_argument: None}
        compiled, cache, reused = self._take_kv(prompt, request)
        fed: list[int] = prompt[:reused]  # the positions the cache holds
        evaluated = 0
        generated: list[int] = []
        shown = ""
        reason: StopReason = "max_tokens"
        greedy = request.temperature <= 0
        generator = None if greedy else torch.Generator(device="cpu").manual_seed(0)
        remaining = request.heal_text  # token healing: text the next tokens must spell first
        lookup = request.prompt_lookup_tokens if greedy and compiled is None else 0

        def forward(ids: list[int], keep: int):
            nonlocal evaluated
            evaluated += len(ids)
            if compiled is not None:
                out = compiled.forward(ids, keep)
            else:
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
                    draft = prompt_lookup_draft(fed + [token], lookup, request.stop_ids,
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
            if cache is not None and cache.get_seq_length() == len(fed) and fed:
                self._prefix_cache.put(fed, cache)
        text = self.tokenizer.decode_infilling(generated)
        tail = text[len(shown):] if text.startswith(shown) else ""
        return Chunk(tail, len(generated), reason, len(prompt), time.perf_counter() - started, generated, reused,
                     evaluated)

    def _take_kv(self, prompt: list[int], request: GenerationRequest) -> tuple[CompiledDecoder | None, Any, int]:
        """Where this generation's keys and values go: the compiled step's static cache (``cache``
        None) or a DynamicCache from the prefix cache; and how many prompt tokens they hold."""
        from transformers import DynamicCache

        prefix_cache = self._prefix_cache
        if request.kv_cache_bytes is not None:
            prefix_cache.capacity_bytes = request.kv_cache_bytes
            prefix_cache.evict()
        compiled = self._compiled_for(prompt, request)
        if compiled is not None:  # its static cache keeps the last sequence's prefix instead
            prefix_cache.clear()
            return compiled, None, compiled.keep_prefix(prompt, request.kv_cache_bytes != 0)
        cache, reused = prefix_cache.take(prompt) if prefix_cache.capacity_bytes > 0 else (None, 0)
        return None, cache if cache is not None else DynamicCache(config=self._model.config), reused

    def _compiled_for(self, prompt: list[int], request: GenerationRequest) -> CompiledDecoder | None:
        """The compiled decode step, once it is ready and where the request fits its cache."""
        compiled = self._compiled
        if compiled is None or not compiled.ready or len(prompt) + request.max_new_tokens > compiled.max_tokens:
            return None
        return compiled

    def _pick_healed(self, logits: Any, remaining: str, temperature: float, generator: Any) -> tuple[int, str]:
        """The best token consistent with the backed-off text (``HealingVocabulary``)."""
        import torch

        candidates = self._vocabulary.candidates(remaining)
        if not candidates:  # cannot happen for text that came from a token; generate freely
            return _pick(logits, temperature, generator), ""
        index = torch.tensor(candidates, device=logits.device)
        masked = torch.full_like(logits, float("-inf"))
        masked[index] = logits[index]
        token = _pick(masked, temperature, generator)
        return token, self._vocabulary.still_to_spell(token, remaining)

    def pieces(self) -> list[str]:
        """Each token's text as decode_infilling shows it ("" for control tokens)."""
        return self._vocabulary.pieces()


def _pick(logits: Any, temperature: float, generator: Any) -> int:
    import torch

    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.float() / temperature, dim=-1).cpu()
    return int(torch.multinomial(probs, 1, generator=generator))
