"""A static KV cache and a ``torch.compile``d one-token decode step for the transformers engine.

Why: an eager decode step of a small model is per-layer Python and dispatch overhead plus
matrix-vector products, and on CPU the products are the larger part: the BLAS ``gemv`` behind
``nn.Linear`` reads a one-row product's weights at 15 GB/s on the 2-core test machine, where a
plain reduction reads memory at 45. So the compiled step runs a twin of the model (the same
parameter tensors) whose linear layers compute one row as ``(weight * x).sum(-1)``, which
inductor turns into one streaming reduction per layer; with the overhead gone too, the step
takes less than half of eager's time (the figures are in settings' ``compile``). On a GPU the
twin keeps ``nn.Linear`` and ``mode="reduce-overhead"`` adds CUDA graphs.

Compiling takes a minute or two on 2 cores (SmolLM2: 110 s with an empty inductor cache, 37 s
with a warm one), so it happens on a thread of its own after the model loads, while the engine
keeps serving eagerly, and it pauses while a generation runs (``serving``); generations switch
to the compiled step once it is ready. While it compiles, torch's "compiling" flag (a
process-wide global) is also seen by the eager thread, so transformers takes its compile-safe
branches there: the same arithmetic.

The static cache holds one sequence: the next prompt keeps its longest common prefix with it
(the layers' write counters are set back to that length; what lies past it is overwritten) and
evaluates the rest eagerly into the same cache. Attention reads only the cache's first
``window`` positions (a multiple of ``WINDOW_STEP`` covering the sequence), a size the step is
compiled for symbolically, so a short prompt does not pay for the whole cache. Prompt-lookup
drafts are not used on this path: verifying one takes an eager several-token pass, 3 to 5 times
a compiled step on SmolLM2, so even on code that drafts well (8 × 64 tokens of stdlib sources:
134 verifications and 97 single steps instead of 504 steps) the compiled steps alone come out
as fast (10.8 s against 11.1 on a quiet machine) or faster (29 s against 47 on a busy one).
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import ctypes
import functools
import itertools
import logging
import os
import signal
import sys
import threading
import time
import weakref
from pathlib import Path
from collections.abc import Iterator
from types import FrameType
from typing import Any

from code_llama_ls.backends.prefix_cache import common_prefix
from code_llama_ls.memory import cache_stats

log = logging.getLogger(__name__)
WARM_UP_STEPS = 3
WINDOW_STEP = 256
AUTO_MIN_WEIGHT_BYTES = 256 * 2**20
"""``compile: auto`` on CPU from here up: SmolLM2-135M in float32, the model measured, has 540 MB."""
PAUSE_LIMIT_S = 60.0
"""The longest the warm-up waits for one generation: past it, it goes on (should a lock it holds
be one the generation waits for, this ends the standstill)."""
COMPILE_THREAD_NICENESS = 15
"""Below the generation thread's 10: the eager suggestions served while the step compiles keep
the cores; the compiler's own processes inherit it."""


def compiles_by_default(device: str, dtype: Any = None, weight_bytes: int = 0) -> bool:
    """``compile: auto``: on where compiling was measured faster. CPU float32 from SmolLM2-135M's
    size up (see settings' ``compile`` for the figures): the gain is in reading the weights, and
    larger models read more of them; smaller models, whose weights stay in the caches, other CPU
    dtypes and MPS are unmeasured, so off. CUDA: on, unmeasured here (no GPU), as CUDA graphs
    remove the launch overhead that dominates a small batch's decode step."""
    if device.startswith("cuda"):
        return True
    return device == "cpu" and str(dtype) == "torch.float32" and weight_bytes >= AUTO_MIN_WEIGHT_BYTES


def _matvec_linear(self: Any, x: Any) -> Any:
    """``nn.Linear.forward`` for the compiled twin: one row as a reduction that inductor streams
    at memory speed (the BLAS ``gemv`` it replaces is three times slower); more rows as before."""
    import torch

    if x.shape[-2] != 1:
        return torch.nn.functional.linear(x, self.weight, self.bias)
    y = (x.unsqueeze(-2) * self.weight).sum(-1)
    return y if self.bias is None else y + self.bias


def decode_twin(model: Any, matvec: bool) -> Any:
    """A copy of ``model``'s modules sharing its parameters and buffers (no weight is copied), with
    ``_matvec_linear`` on every linear layer where ``matvec``. The step is compiled from the twin,
    so the model itself keeps running eagerly on the other thread, unchanged."""
    import torch

    shared = {id(t): t for t in itertools.chain(model.parameters(), model.buffers())}
    twin = copy.deepcopy(model, shared)
    if matvec:
        for module in twin.modules():
            if type(module) is torch.nn.Linear:
                module.forward = _matvec_linear.__get__(module)
    return twin


@functools.cache
def _windowed_layer() -> type:
    from transformers.cache_utils import StaticLayer

    class WindowedStaticLayer(StaticLayer):
        """A static layer whose attention sees only its first ``window`` positions."""

        window = 0

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            keys, values = super().update(key_states, value_states, *args, **kwargs)
            return keys[:, :, :self.window], values[:, :, :self.window]

        def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
            return self.window, 0

    return WindowedStaticLayer


def windowed_static_cache(config: Any, max_tokens: int) -> Any:
    """transformers' ``StaticCache`` for ``max_tokens`` with its full-attention layers windowed
    (sliding-window layers, which bound their reads already, stay as they are). One position
    more than any window: a window as long as the whole cache would compile a graph of its own."""
    from transformers import StaticCache
    from transformers.cache_utils import StaticLayer

    size = max_tokens + 1
    cache = StaticCache(config=config, max_cache_len=size)
    layer = _windowed_layer()
    cache.layers = [layer(max_cache_len=size) if type(each) is StaticLayer else each for each in cache.layers]
    return cache


class Abandoned(BaseException):
    """Raised in a warm-up thread whose engine closes or whose process exits (a BaseException:
    torch's own ``except Exception`` fallbacks must not swallow it)."""


def _abandon(reference: weakref.ref) -> None:
    decoder = reference()
    if decoder is not None:
        decoder.abandon()


def _stop_compiler_processes() -> None:
    """SIGTERM this process's children that run inductor's C++ compiler, and theirs (``cc1plus``
    holds the pipe the warm-up reads): the warm-up waits for the compiler without a timeout, so
    it would not run Python (and see ``Abandoned``) before that ends, tens of seconds later."""
    from torch._inductor.cpp_builder import get_cpp_compiler

    compiler = os.path.basename(get_cpp_compiler()).encode()
    children: dict[int, list[tuple[int, bytes]]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            argv0 = (stat.parent / "cmdline").read_bytes().split(b"\0", 1)[0]
        except (OSError, ValueError, IndexError):  # gone meanwhile, or not ours to read
            continue
        children.setdefault(parent, []).append((int(stat.parent.name), os.path.basename(argv0)))
    doomed = [pid for pid, name in children.get(os.getpid(), []) if name == compiler]
    for pid in doomed:
        doomed.extend(child for child, _ in children.get(pid, []))
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass


def _may_pause(frame: FrameType | None) -> bool:
    """Not inside an import or a log handler: the generation may need their locks."""
    while frame is not None:
        name = frame.f_code.co_filename
        if "importlib" in name or name.endswith(("logging/__init__.py", "logging/handlers.py")):
            return False
        frame = frame.f_back
    return True


def _lower_compile_priority() -> None:
    if sys.platform.startswith("linux"):  # per-thread niceness: a Linux thread id is a task id
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), COMPILE_THREAD_NICENESS)
        except OSError:  # already lower, or not allowed: keep the process's priority
            pass


class CompiledDecoder:
    """One model's compiled decode step and the static cache it runs on. After ``start`` the
    warm-up thread owns both until ``state`` is "ready"; from then on only the generation thread."""

    def __init__(self, model: Any, device: str, cache_argument: str, max_tokens: int, bytes_per_token: int = 0) -> None:
        self._model = model
        self._device = device
        self._cache_argument = cache_argument
        self.max_tokens = max_tokens
        self.bytes_per_token = bytes_per_token
        self.state = "warming"  # then "ready" or "failed"
        self.message = "compiled decode warming up"
        self.warm_up_s = 0.0
        self.held: list[int] = []  # the tokens whose keys and values the static cache holds
        self._cache: Any = None
        self._step: Any = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._generating = False
        self._generated = threading.Event()  # set when no generation runs
        self._generated.set()

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._warm_up, name="code-llama-compile", daemon=True)
        self._thread.start()
        atexit.register(_abandon, weakref.ref(self))

    def abandon(self, timeout_s: float = 10.0) -> None:
        """End a warm-up still running: when the engine closes (it would hold the model and both
        cores for minutes more), and before the interpreter exits (a daemon thread it finds in
        torch's C++ code is unwound through frames that cannot be, and the process aborts:
        "terminate called without an active exception"). The exception lands as soon as the
        thread runs Python again, which compiling does every few milliseconds; a compile begun
        after it works as before."""
        thread = self._thread
        if thread is not None and thread.is_alive() and not self._done.is_set():
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(Abandoned))
            self._generating = False
            self._generated.set()  # out of a pause, into the exception
            if sys.platform.startswith("linux"):
                _stop_compiler_processes()
            thread.join(timeout_s)

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Around a generation served eagerly while the step compiles: the warm-up pauses at its
        next Python call until the generation ends. Both need the GIL, and dynamo holds it most
        of the time: an eager SmolLM2 suggestion (a 1,000-token prompt, 32 tokens) took 30-50 s
        beside it instead of 3, and 5-10 s with a 10 µs switch interval."""
        self._generated.clear()
        self._generating = True
        try:
            yield
        finally:
            self._generating = False
            self._generated.set()

    def _trace(self, frame: FrameType, event: str, arg: Any) -> None:
        """The warm-up thread's trace function (calls only: it returns no line tracer)."""
        if self._generating and _may_pause(frame):
            self._generated.wait(PAUSE_LIMIT_S)

    def wait(self, timeout_s: float) -> bool:
        """Whether the compiled step got ready within ``timeout_s`` (False once it failed)."""
        self._done.wait(timeout_s)
        return self.ready

    def stats(self) -> dict:
        """The static cache for ``codeLlama/engineStats``: the sequence it holds, in bytes, against its size."""
        return cache_stats(len(self.held) * self.bytes_per_token, self.max_tokens * self.bytes_per_token, "bytes")

    def _warm_up(self) -> None:
        import torch

        _lower_compile_priority()
        started = time.perf_counter()
        sys.settrace(self._trace)
        try:
            twin = decode_twin(self._model, matvec=self._device == "cpu")
            self._cache = windowed_static_cache(self._model.config, self.max_tokens)
            mode = "reduce-overhead" if self._device.startswith("cuda") else None
            self._step = torch.compile(functools.partial(self._run, twin), mode=mode, dynamic=True)
            with torch.inference_mode():  # as generations run (an inference tensor is a guard's concern)
                token = torch.zeros((1, 1), dtype=torch.long, device=self._device)
                self.forward([0])  # eagerly: the layers allocate (and mark) their tensors outside the graph
                self._step(token, self._window(1))  # compiles, with the window as a symbol
                with torch.compiler.set_stance("fail_on_recompile"):  # the widest window: the same graph
                    for _ in range(WARM_UP_STEPS):
                        self._step(token, self.max_tokens)
            self.keep_prefix([0], reuse=False)
            self.warm_up_s = time.perf_counter() - started
            self.state, self.message = "ready", f"compiled decode ready in {self.warm_up_s:.0f} s"
        except Exception as exc:  # a compiler that cannot build here: keep serving eagerly
            self._fail(exc)
        except Abandoned:
            self.state, self.message = "failed", "compiled decode abandoned: the engine closed"
        finally:
            sys.settrace(None)
            self._done.set()

    def _fail(self, exc: Exception) -> None:
        why = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        self.state, self.message = "failed", f"compiled decode unavailable: {why}"
        log.warning("compiled decode unavailable, decoding eagerly: %s", exc)  # with the guard that failed

    def _run(self, model: Any, input_ids: Any, window: int, keep: int = 1) -> Any:
        """A forward pass attending to the cache's first ``window`` positions. The window is an
        argument so that the compiled step takes it as a symbol: read from the layers, it would be
        a constant, and each new value would compile again."""
        for layer in self._cache.layers:
            if hasattr(layer, "window"):
                layer.window = window
        return model(input_ids=input_ids, use_cache=True, logits_to_keep=keep,
                     **{self._cache_argument: self._cache}).logits[0]

    def _window(self, needed: int) -> int:
        return min(self.max_tokens, -(-needed // WINDOW_STEP) * WINDOW_STEP)

    def _rewind(self, length: int) -> None:
        """Set every layer's write counter to ``length`` (static layers write where it says)."""
        import torch

        del self.held[length:]
        with torch.inference_mode():
            for layer in self._cache.layers:
                if layer.is_initialized:
                    layer.cumulative_length.fill_(length)

    def keep_prefix(self, prompt: list[int], reuse: bool = True) -> int:
        """Keep the held tokens' common prefix with ``prompt`` (the last prompt token is always
        evaluated: its logits choose the first new token); its length."""
        keep = min(common_prefix(self.held, prompt), len(prompt) - 1) if reuse else 0
        self._rewind(keep)
        return keep

    def forward(self, ids: list[int], keep: int = 1) -> Any:
        """Logits of the last ``keep`` of ``ids`` (``keep`` rows): several tokens run eagerly into
        the static cache, one through the compiled step once it is ready."""
        import torch

        window = self._window(len(self.held) + len(ids))
        tensor = torch.tensor([ids], device=self._device)
        logits = self._compiled(tensor, window) if len(ids) == 1 and self.ready else None
        if logits is None:
            logits = self._run(self._model, tensor, window, keep)
        self.held.extend(ids)
        return logits

    def _compiled(self, tensor: Any, window: int) -> Any | None:
        """The step's logits, or None (and the step off for good) where it would have to compile
        again: never on the generation thread, in the middle of a suggestion."""
        import torch

        try:
            with torch.compiler.set_stance("fail_on_recompile"):
                logits = self._step(tensor, window)
        except Exception as exc:  # a guard that no longer holds, or a failed run: eager from here on
            self._fail(exc)
            self._rewind(len(self.held))
            return None
        return logits.clone() if self._device.startswith("cuda") else logits  # CUDA graphs reuse their output
