"""In-process generation with llama.cpp through llama-cpp-python (the ``[llamacpp]`` extra).

Why: on a laptop CPU the quantised GGUF files people download decode two to three times faster
in llama.cpp than float32 weights in torch, in a quarter of the memory. This engine drives
llama.cpp's C API as llama-cpp-python binds it (``llama_cpp.llama_cpp``) rather than its
``Llama`` class, because the prompt arrives as our token ids (never re-tokenised), healing masks
logits and prompt-lookup drafting reads the logits of several positions.

One sequence lives in llama.cpp's KV cache between requests: the next prompt keeps its longest
common prefix with it and evaluates only the rest (typing in SPM order stays an append). Like the
transformers engine, everything runs on one worker thread at lower priority; ``llama_decode``
releases the GIL, so the event loop runs while the model works. Cancellation is checked between
decoding steps, and a long prompt is aborted inside ``llama_decode`` through its abort callback
(installed for prefill only: it is called once per graph node).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
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
from code_llama_ls.backends.decoding import HealingVocabulary, WorkerEngine, prompt_lookup_draft
from code_llama_ls.backends.prefix_cache import common_prefix
from code_llama_ls.memory import cache_stats
from code_llama_ls.model_files import find_gguf
from code_llama_ls.prompts.tokenization import ModelTokenizer

log = logging.getLogger(__name__)
BATCH_TOKENS = 512
"""Prompt tokens per ``llama_decode`` call (llama.cpp's default batch; less in a smaller context)."""
ABORTED = 2  # llama_decode's return code when the abort callback stopped it


def llama_cpp_installed() -> bool:
    """Whether llama-cpp-python can be imported (cheap: finds the package, loads nothing)."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def _bindings() -> Any:
    try:
        import llama_cpp.llama_cpp as lib
    except ImportError as exc:
        raise BackendError("engine llama.cpp needs llama-cpp-python: pip install 'code-llama-ls[llamacpp]'") from exc
    except (OSError, RuntimeError) as exc:  # the package is there, its libllama is not
        raise BackendError(f"llama-cpp-python cannot load libllama: {exc}") from exc
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # its log callback prints to stderr above this
    return lib


class LlamaCppEngine(WorkerEngine):
    name = "llama.cpp"
    supports_healing = True

    def __init__(self, model: str, tokenizer: ModelTokenizer, *, device: str = "auto",
                 threads: int | None = None, context_tokens: int | None = None) -> None:
        super().__init__(model, tokenizer)
        self._requested_device = device
        self._threads = threads or os.cpu_count() or 1
        self._context_tokens = context_tokens
        self._lib: Any = None
        self._model: Any = None
        self._ctx: Any = None
        self._memory: Any = None
        self._batch: Any = None
        self._n_vocab = 0
        self._n_ctx = 0
        self._n_batch = BATCH_TOKENS
        self._offloaded = False
        self._held: list[int] = []  # the tokens whose keys and values sequence 0 holds, in order
        self._peak_held = 0
        self._cancel: CancelToken | None = None  # what the abort callback reads during prefill
        self._abort = None  # the ctypes callback, kept alive while llama.cpp may call it
        self.evaluated_tokens = 0  # every token run through the model since load

    @property
    def held_tokens(self) -> tuple[int, ...]:
        """The tokens whose keys and values llama.cpp holds (the last prompt, then its fed answer)."""
        return tuple(self._held)

    # -- protocol --------------------------------------------------------------------------

    @property
    def device_type(self) -> str:
        return "gpu" if self._offloaded else "cpu"

    def status(self) -> BackendStatus:
        device = None if self._model is None else ("gpu" if self._offloaded else f"cpu, {self._threads} threads")
        return BackendStatus(self._state, self.model_name, device, self._message,  # type: ignore[arg-type]
                             {"engine": "llama.cpp", "contextTokens": self._n_ctx,
                              "evaluatedTokens": self.evaluated_tokens})

    def cache_stats(self) -> dict[str, dict]:
        peak, self._peak_held = self._peak_held, len(self._held)
        return {"kv": cache_stats(len(self._held), self._n_ctx, "tokens", max(peak, len(self._held)))}

    def _loaded(self) -> bool:
        return self._ctx is not None

    def _on_loaded(self) -> str:
        return f"{self.model_name} on llama.cpp ({self.status().device})"

    async def close(self) -> None:
        if self._ctx is not None:
            await asyncio.get_running_loop().run_in_executor(self._worker, self._free)
        self._worker.shutdown(wait=False, cancel_futures=True)

    # -- worker thread: loading ------------------------------------------------------------

    def _load_blocking(self, progress: ProgressCallback) -> None:
        gguf = find_gguf(self.model_name)
        if gguf is None:
            raise BackendError(f"engine llama.cpp runs .gguf models; {self.model_name!r} is not a .gguf file "
                               "(set engine: transformers for a Hugging Face folder or hub id)")
        lib = self._lib = _bindings()
        lib.llama_backend_init()
        progress(f"loading {gguf.name} with llama.cpp", 5)
        params = lib.llama_model_default_params()
        params.n_gpu_layers = self._gpu_layers(lib)

        reported = [5]

        @lib.llama_progress_callback
        def on_progress(fraction: float, _data: Any) -> bool:
            percentage = 5 + int(85 * fraction)
            if percentage > reported[0]:  # llama.cpp calls this per tensor
                reported[0] = percentage
                progress(f"loading {gguf.name} with llama.cpp", percentage)
            return True

        params.progress_callback = on_progress
        model = lib.llama_model_load_from_file(str(gguf).encode(), params)
        if not model:
            raise BackendError(f"llama.cpp cannot load {gguf} (not a GGUF model it knows; the log above says why)")
        self._model, self._offloaded = model, params.n_gpu_layers > 0
        self._n_vocab = lib.llama_vocab_n_tokens(lib.llama_model_get_vocab(model))
        if self._n_vocab < self.tokenizer.vocab_size:
            self._free()
            raise BackendError(f"{gguf.name} has {self._n_vocab} tokens but its tokenizer has "
                               f"{self.tokenizer.vocab_size}; choose a matching tokenizer")
        self._create_context(lib, model)
        progress(f"{self.model_name} ready on llama.cpp", 100)

    def _gpu_layers(self, lib: Any) -> int:
        """All layers on the GPU where this build offloads and the device allows; else none."""
        if self._requested_device == "cpu":
            return 0
        if lib.llama_supports_gpu_offload():
            return 10_000
        if self._requested_device != "auto":
            raise BackendError(f"device {self._requested_device!r} requested but this llama-cpp-python build "
                               "has no GPU offload (reinstall it with CMAKE_ARGS for CUDA or Metal)")
        return 0

    def _create_context(self, lib: Any, model: Any) -> None:
        params = lib.llama_context_default_params()
        trained = lib.llama_model_n_ctx_train(model)
        wanted = self._context_tokens or (16_384 if self._offloaded else 4_096)
        params.n_ctx = min(wanted, trained) if trained > 0 else wanted
        params.n_batch = params.n_ubatch = BATCH_TOKENS
        params.n_seq_max = 1
        params.n_threads = params.n_threads_batch = self._threads
        params.no_perf = True
        ctx = lib.llama_init_from_model(model, params)
        if not ctx:
            self._free()
            raise BackendError(f"llama.cpp cannot create a context of {params.n_ctx} tokens (out of memory?)")
        self._ctx, self._n_ctx, self._n_batch = ctx, lib.llama_n_ctx(ctx), lib.llama_n_batch(ctx)
        self._memory = lib.llama_get_memory(ctx)
        self._batch = lib.llama_batch_init(BATCH_TOKENS, 0, 1)

        @lib.ggml_abort_callback
        def abort(_data: Any) -> bool:
            cancel = self._cancel
            return cancel is not None and cancel.cancelled

        self._abort = abort

    def _free(self) -> None:
        lib = self._lib
        if self._batch is not None:
            lib.llama_batch_free(self._batch)
        if self._ctx is not None:
            lib.llama_free(self._ctx)
        if self._model is not None:
            lib.llama_model_free(self._model)
        self._batch = self._ctx = self._model = self._memory = None
        self._held = []

    # -- worker thread: generating ---------------------------------------------------------

    def _generate_blocking(self, request: GenerationRequest, cancel: CancelToken, emit) -> None:
        try:
            emit(self._decode_loop(request, cancel, emit))
        except BaseException as exc:  # reported to the awaiting coroutine, never lost
            emit(exc)

    def _decode(self, ids: list[int], all_logits: bool) -> int:
        """Run ``ids`` after the held tokens (at most one batch); llama_decode's return code."""
        batch, start = self._batch, len(self._held)
        for i, token in enumerate(ids):
            batch.token[i] = token
            batch.pos[i] = start + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = all_logits or i == len(ids) - 1
        batch.n_tokens = len(ids)
        code = self._lib.llama_decode(self._ctx, batch)
        if code == 0:
            self._held.extend(ids)
            self.evaluated_tokens += len(ids)
            self._peak_held = max(self._peak_held, len(self._held))
        return code

    def _logits(self, row: int) -> Any:
        import numpy as np

        return np.ctypeslib.as_array(self._lib.llama_get_logits_ith(self._ctx, row), shape=(self._n_vocab,))

    def _keep_prefix(self, prompt: list[int], reuse: bool) -> int:
        """Cut the held sequence back to its common prefix with ``prompt`` (the prompt's last
        token is always evaluated: its logits choose the first new token); that length."""
        keep = min(common_prefix(self._held, prompt), len(prompt) - 1) if reuse else 0
        self._lib.llama_memory_seq_rm(self._memory, 0, keep, -1)
        del self._held[keep:]
        return keep

    def _prefill(self, ids: list[int], cancel: CancelToken) -> bool:
        """Evaluate the prompt's new tokens batch by batch; False when cancelled meanwhile."""
        self._cancel = cancel
        self._lib.llama_set_abort_callback(self._ctx, self._abort, None)
        try:
            for start in range(0, len(ids), self._n_batch):
                if cancel.cancelled:
                    return False
                code = self._decode(ids[start:start + self._n_batch], False)
                if code == ABORTED:
                    self._held = self._held[:self._lib.llama_memory_seq_pos_max(self._memory, 0) + 1]
                    return False
                if code != 0:
                    raise BackendError(f"llama_decode failed with code {code} on the prompt")
            return True
        finally:
            self._lib.llama_set_abort_callback(self._ctx, self._lib.ggml_abort_callback(), None)  # NULL
            self._cancel = None

    def _decode_loop(self, request: GenerationRequest, cancel: CancelToken, emit) -> Chunk:
        started = time.perf_counter()
        prompt = list(request.prompt_ids)
        if not prompt:
            raise BackendError("empty prompt")
        room = self._n_ctx - len(prompt)
        if room <= 0:
            raise BackendError(f"a prompt of {len(prompt)} tokens does not fit the context of {self._n_ctx}")
        evaluated_before = self.evaluated_tokens
        reused = self._keep_prefix(prompt, request.kv_cache_bytes != 0)
        sampler = _Sampler(request.temperature, self._vocabulary, request.heal_text)
        generated: list[int] = []
        shown = ""
        reason: StopReason = "max_tokens"
        limit = min(request.max_new_tokens, room)
        lookup = request.prompt_lookup_tokens if request.temperature <= 0 else 0

        def finish(text_tail: str, why: StopReason) -> Chunk:
            return Chunk(text_tail, len(generated), why, len(prompt), time.perf_counter() - started, generated,
                         reused, self.evaluated_tokens - evaluated_before)

        def accept(token: int) -> None:
            nonlocal shown
            generated.append(token)
            text = self.tokenizer.decode_infilling(generated)
            if not text.endswith("\ufffd") and text.startswith(shown) and len(text) > len(shown):
                emit(Chunk(text[len(shown):], len(generated)))
                shown = text

        if not self._prefill(prompt[reused:], cancel):
            return finish("", "cancelled")
        logits = self._logits(-1)
        while len(generated) < limit:
            if cancel.cancelled:
                reason = "cancelled"
                break
            token = sampler.pick(logits)
            if token in request.stop_ids:
                reason = "eot"
                break
            accept(token)
            if len(generated) >= limit:
                break  # the last token is never fed: nothing would read its logits
            draft = prompt_lookup_draft(self._held + [token], lookup, request.stop_ids, limit - len(generated)) \
                if lookup and not sampler.healing else []
            if self._decode([token, *draft], bool(draft)) != 0:
                raise BackendError("llama_decode failed while generating")
            if not draft:
                logits = self._logits(-1)
                continue
            accepted = 0
            while accepted < len(draft) and sampler.pick(self._logits(accepted)) == draft[accepted]:
                accept(draft[accepted])
                accepted += 1
            rejected = len(draft) - accepted
            if rejected:
                del self._held[len(self._held) - rejected:]
                self._lib.llama_memory_seq_rm(self._memory, 0, len(self._held), -1)
            logits = self._logits(accepted)
        text = self.tokenizer.decode_infilling(generated)
        return finish(text[len(shown):] if text.startswith(shown) else "", reason)


class _Sampler:
    """Greedy or temperature sampling over one row of logits, constrained while healing."""

    def __init__(self, temperature: float, vocabulary: HealingVocabulary, heal_text: str) -> None:
        import numpy as np

        self._np = np
        self._temperature = temperature
        self._rng = np.random.default_rng(0) if temperature > 0 else None
        self._vocabulary = vocabulary
        self._remaining = heal_text  # text the next tokens must spell first

    @property
    def healing(self) -> bool:
        return bool(self._remaining)

    def pick(self, logits: Any) -> int:
        np = self._np
        if self._remaining:
            candidates = self._vocabulary.candidates(self._remaining)
            if candidates:
                index = np.asarray(candidates)
                token = int(index[self._choose(logits[index])])
                self._remaining = self._vocabulary.still_to_spell(token, self._remaining)
                return token
            self._remaining = ""  # cannot happen for text that came from a token; generate freely
        return self._choose(logits)

    def _choose(self, logits: Any) -> int:
        np = self._np
        if self._rng is None:
            return int(np.argmax(logits))
        scaled = logits.astype(np.float64) / self._temperature
        probs = np.exp(scaled - scaled.max())
        return int(self._rng.choice(len(probs), p=probs / probs.sum()))
