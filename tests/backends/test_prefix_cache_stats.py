"""The KV prefix cache reports its peak: a generation takes its entry out while it runs, so a
sample taken then would see an empty cache."""

from __future__ import annotations

from code_llama_ls.backends.prefix_cache import PrefixCache


class Positions:
    """Stands in for a DynamicCache: only crop() is called."""

    def crop(self, count: int) -> None:
        pass


def test_peak_covers_an_entry_taken_out_for_a_generation_and_resets_when_read():
    cache = PrefixCache(capacity_bytes=1000, bytes_per_token=10)
    cache.put([1, 2, 3, 4, 5], Positions())
    taken, reused = cache.take([1, 2, 3, 9])
    assert taken is not None and reused == 3
    first = cache.stats()
    assert (first["size"], first["peak"], first["bound"]) == (0, 50, 1000)
    assert cache.stats()["peak"] == 0


def test_peak_never_exceeds_the_bound():
    cache = PrefixCache(capacity_bytes=100, bytes_per_token=10)
    for start in range(0, 40, 4):
        cache.put(list(range(start, start + 4)), Positions())
    assert cache.stats()["peak"] <= 100
