"""Bounded caches and the memory of the process they live in.

Every cache that grows with use is an :class:`Lru` (or keeps its own bound) and reports
``{size, bound, unit}``, so ``codeLlama/engineStats`` can show each one against its bound.
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict
from typing import Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
_MISSING = object()


def cache_stats(size: int, bound: int | None, unit: str, peak: int | None = None) -> dict:
    """One cache's entry in ``codeLlama/engineStats`` (``bound`` None: set by the client; ``peak``:
    the largest size since the last report, for a cache that empties while it is in use)."""
    return {"size": size, "bound": bound, "unit": unit, "peak": size if peak is None else max(size, peak)}


class Lru(Generic[K, V]):
    """A mapping that keeps its ``bound`` most recently used entries."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K, default: V | None = None) -> V | None:
        value = self._data.get(key, _MISSING)
        if value is _MISSING:
            return default
        self._data.move_to_end(key)
        return value  # type: ignore[return-value]

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        self._trim()

    def resize(self, bound: int) -> None:
        """Follow a changed setting: evicts at once when the bound shrank."""
        if bound != self.bound:
            self.bound = bound
            self._trim()

    def clear(self) -> None:
        self._data.clear()

    def stats(self, unit: str) -> dict:
        return cache_stats(len(self._data), self.bound, unit)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def _trim(self) -> None:
        while len(self._data) > self.bound:
            self._data.popitem(last=False)


def process_memory() -> dict:
    """The server's resident set and Python heap, cheap enough to ask every few seconds
    (tracemalloc would slow every allocation)."""
    return {"rssBytes": _rss_bytes(), "pythonBlocks": sys.getallocatedblocks(),
            "pythonBlocksMeasure": "sys.getallocatedblocks(): live blocks of Python's object allocator"}


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # not Linux: the peak is what is known
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
