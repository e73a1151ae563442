"""A static KV cache and a ``torch.compile``d one-token decode step for the transformers engine.

Why: a decode step of a small model is mostly per-layer Python and dispatch overhead, and on a
GPU mostly kernel launches; a compiled step over a cache of fixed shape removes them (CUDA graphs
with ``mode="reduce-overhead"``). Compiling takes seconds to minutes, so it happens on a thread of
its own after the model loads, while the engine keeps serving eagerly; generations switch to the
compiled step once it is ready.

The static cache holds one sequence: the next prompt keeps its longest common prefix with it
(the layers' write counters are set back to that length; what lies past it is masked and
overwritten) and evaluates the rest eagerly into the same cache. Prompt-lookup drafts are not used on this path: verifying
them needs several positions per step, which the one-token graph does not have.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from code_llama_ls.backends.decoding import lower_thread_priority
from code_llama_ls.backends.prefix_cache import common_prefix

log = logging.getLogger(__name__)
WARM_UP_STEPS = 3


def compiles_by_default(device: str) -> bool:
    """``compile: auto``: on where compiling was measured faster. CPU (SmolLM2-135M float32, 2 cores,
    torch 2.13): 54 ms/token compiled against 52 eager, so off; CUDA: on (unmeasured here, no GPU;
    CUDA graphs remove the launch overhead that dominates a small batch's decode step)."""
    return device.startswith("cuda")


class CompiledDecoder:
    """One model's compiled decode step and the static cache it runs on."""

    def __init__(self, model: Any, device: str, cache_argument: str, max_tokens: int) -> None:
        self._model = model
        self._device = device
        self._cache_argument = cache_argument
        self.max_tokens = max_tokens
        self.state = "warming"  # then "ready" or "failed"
        self.message = ""
        self.warm_up_s = 0.0
        self.held: list[int] = []  # the tokens whose keys and values the static cache holds
        self._cache: Any = None
        self._step: Any = None
        self._done = threading.Event()

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def start(self) -> None:
        threading.Thread(target=self._warm_up, name="code-llama-compile", daemon=True).start()

    def wait(self, timeout_s: float) -> bool:
        """Whether the compiled step got ready within ``timeout_s`` (False once it failed)."""
        self._done.wait(timeout_s)
        return self.ready

    def _warm_up(self) -> None:
        import torch
        from transformers import StaticCache

        lower_thread_priority()
        started = time.perf_counter()
        try:
            self._cache = StaticCache(config=self._model.config, max_cache_len=self.max_tokens)
            mode = "reduce-overhead" if self._device.startswith("cuda") else None
            self._step = torch.compile(self._eager_step, mode=mode, dynamic=False)
            with torch.inference_mode():
                for position in range(WARM_UP_STEPS):
                    self._step(torch.zeros((1, 1), dtype=torch.long, device=self._device),
                               torch.tensor([position], device=self._device))
                self._cache.reset()
            self.warm_up_s = time.perf_counter() - started
            self.state, self.message = "ready", f"compiled decode ready in {self.warm_up_s:.0f} s"
        except Exception as exc:  # a compiler that cannot build here: keep serving eagerly
            self.state, self.message = "failed", f"compiled decode unavailable: {str(exc).splitlines()[0]}"
            log.warning("%s", self.message)
        finally:
            self._done.set()

    def _eager_step(self, input_ids: Any, cache_position: Any) -> Any:
        return self._model(input_ids=input_ids, cache_position=cache_position, use_cache=True,
                           **{self._cache_argument: self._cache}).logits[0, -1]

    def keep_prefix(self, prompt: list[int], reuse: bool = True) -> int:
        """Keep the held tokens' common prefix with ``prompt`` (the last prompt token is always
        evaluated: its logits choose the first new token); its length."""
        import torch

        keep = min(common_prefix(self.held, prompt), len(prompt) - 1) if reuse else 0
        del self.held[keep:]
        with torch.inference_mode():  # static layers write where their counter says, not at cache_position
            for layer in self._cache.layers:
                if layer.is_initialized:
                    layer.cumulative_length.fill_(keep)
        return keep

    def forward(self, ids: list[int]) -> Any:
        """Logits after ``ids`` (one row): several tokens run eagerly into the static cache, one
        through the compiled step."""
        import torch

        start = len(self.held)
        tensor = torch.tensor([ids], device=self._device)
        positions = torch.arange(start, start + len(ids), device=self._device)
        if len(ids) == 1:
            logits = self._step(tensor, positions).clone()  # CUDA graphs reuse their output buffer
        else:
            logits = self._model(input_ids=tensor, cache_position=positions, use_cache=True,
                                 logits_to_keep=1, **{self._cache_argument: self._cache}).logits[0, -1]
        self.held.extend(ids)
        return logits
