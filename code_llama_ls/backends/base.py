"""The one protocol every backend implements: load, stream text chunks, cancel, status.

The in-process transformers backend and the remote ones (later) are interchangeable behind it,
so every feature works with either.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from code_llama_ls.prompts.fim import InfillParts

StopReason = Literal["eot", "max_tokens", "cancelled", "error"]
BackendState = Literal["idle", "loading", "ready", "error"]


class BackendError(RuntimeError):
    """The backend cannot serve (model missing, server unreachable, out of memory …)."""


class CancelToken:
    """Set from the event loop, polled by the generating thread once per decoding step."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass(frozen=True)
class GenerationRequest:
    prompt_ids: list[int]
    max_new_tokens: int
    temperature: float = 0.0
    stop_ids: frozenset[int] = frozenset()
    heal_text: str = ""  # token healing: the first generated tokens must spell this text first
    kv_cache_bytes: int | None = None  # cap for reusable prompt KV caches (None: backend default)
    prompt_lookup_tokens: int = 0  # draft this many tokens from n-gram matches (greedy only)
    # Remote backends only; ``prompt_ids`` stay the prompt. Texts for servers that template themselves:
    infill: InfillParts | None = None  # an infilling prompt's parts (llama.cpp /infill)
    messages: tuple[tuple[str, str], ...] = ()  # an instruct prompt's dialog as (role, content) (chat endpoints)


@dataclass
class Chunk:
    """New text, and once generation ends its totals (``stop_reason`` set on the last chunk)."""

    text: str
    tokens: int = 0
    stop_reason: StopReason | None = None
    prompt_tokens: int = 0
    seconds: float = 0.0
    ids: list[int] | None = None  # on the last chunk: every generated token id (stop token excluded)
    reused_tokens: int = 0  # on the last chunk: prompt tokens served from a cached KV prefix
    evaluated_tokens: int = 0  # on the last chunk: tokens run through the model (new prompt tokens, decode steps, drafts)


@dataclass
class BackendStatus:
    state: BackendState
    model: str
    device: str | None = None
    message: str = ""
    extra: dict = field(default_factory=dict)


ProgressCallback = Callable[[str, int | None], None]
"""Called with a message and a percentage (or None) while loading."""


class Backend(Protocol):
    name: str
    supports_healing: bool
    """Whether ``GenerationRequest.heal_text`` is honoured (the first tokens constrained to it);
    the completion engine sends the other backends prompts unhealed."""

    def status(self) -> BackendStatus: ...

    @property
    def device_type(self) -> str:
        """"cpu", "cuda", "mps" or "remote"; decides default context sizes."""
        ...

    async def load(self, progress: ProgressCallback) -> None:
        """Load or connect; raises BackendError with a message naming what is missing."""
        ...

    def stream(self, request: GenerationRequest, cancel: CancelToken) -> AsyncIterator[Chunk]:
        """Text chunks as they are generated; the last one carries the stop reason."""
        ...

    def cache_stats(self) -> dict[str, dict]:
        """The caches this backend keeps in this process, by name: ``{size, bound, unit}``."""
        ...

    async def close(self) -> None: ...
