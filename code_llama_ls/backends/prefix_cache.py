"""KV caches of recent prompts, reused by the longest common token prefix.

One generation takes the entry that shares the longest prefix with its prompt, crops it to that
prefix, feeds only the rest, and hands the cache back afterwards (prompt and generated tokens).
Entries are evicted least recently used first when their estimated size passes the cap.

Size estimate per token: ``2 (keys and values) × layers × kv_heads × head_dim × dtype bytes``
(a 7B Code Llama in bf16: 2 × 32 × 32 × 128 × 2 = 0.5 MiB per token).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from code_llama_ls.memory import cache_stats


def bytes_per_token(config: Any, dtype_bytes: int) -> int:
    layers = int(getattr(config, "num_hidden_layers"))
    heads = int(getattr(config, "num_attention_heads"))
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    return 2 * layers * kv_heads * head_dim * dtype_bytes


def common_prefix(a: list[int] | tuple[int, ...], b: list[int] | tuple[int, ...]) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:  # the usual case while typing at the end (SPM): one C-level comparison
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo]; a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass
class _Entry:
    ids: list[int]
    cache: Any  # a transformers DynamicCache holding exactly len(ids) positions


class PrefixCache:
    """LRU of (token ids, KV cache) pairs under a byte cap. Not thread-safe: the one
    generation thread uses it."""

    def __init__(self, capacity_bytes: int, bytes_per_token: int) -> None:
        self.capacity_bytes = capacity_bytes
        self.bytes_per_token = max(1, bytes_per_token)
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._next = 0
        self.hits = 0
        self.reused_tokens = 0
        self._peak_bytes = 0  # since the last stats(): a generation takes its entry out while it runs

    @property
    def used_bytes(self) -> int:
        return sum(len(e.ids) for e in self._entries.values()) * self.bytes_per_token

    def __len__(self) -> int:
        return len(self._entries)

    def stats(self) -> dict:
        """Safe from the event loop while the generation thread works: ``list()`` of the
        entries is one step under the GIL, so the thread cannot change them halfway."""
        entries = list(self._entries.values())
        size = sum(len(e.ids) for e in entries) * self.bytes_per_token
        peak, self._peak_bytes = self._peak_bytes, size
        return cache_stats(size, self.capacity_bytes, "bytes", peak)

    def take(self, ids: list[int]) -> tuple[Any | None, int]:
        """Remove and return the cache sharing the longest prefix with ``ids``, cropped to that
        prefix (at most ``len(ids) - 1``: the last prompt token is always fed to get logits),
        and its length; ``(None, 0)`` when nothing is shared."""
        best_key, best = None, 0
        for key, entry in self._entries.items():
            n = common_prefix(entry.ids, ids)
            if n > best:
                best_key, best = key, n
        if best_key is None:
            return None, 0
        entry = self._entries.pop(best_key)
        keep = min(best, len(ids) - 1)
        if keep <= 0:
            return None, 0
        drop = len(entry.ids) - keep
        if drop > 0:
            entry.cache.crop(-drop)
        self.hits += 1
        self.reused_tokens += keep
        return entry.cache, keep

    def put(self, ids: list[int], cache: Any) -> None:
        """Keep ``cache`` (holding exactly the positions of ``ids``) as the most recent entry."""
        if not ids or len(ids) * self.bytes_per_token > self.capacity_bytes:
            return
        self._entries[self._next] = _Entry(list(ids), cache)
        self._next += 1
        self.evict()
        self._peak_bytes = max(self._peak_bytes, self.used_bytes)

    def evict(self) -> None:
        while self._entries and self.used_bytes > self.capacity_bytes:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
