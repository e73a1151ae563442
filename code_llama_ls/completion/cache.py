"""Token healing and the completion cache (typing-through), both token-exact.

**Token healing.** A prompt whose prefix ends inside a word (``self.ap|``) ends on a token the
model rarely saw followed by the rest of that word (``▁ap`` then ``pend``). We back off the
prefix's last token when it is a word piece (letters, digits, ``_``, with or without its leading
space) and make the first generated tokens spell the removed text: a token is allowed while it
starts with the removed text or is a non-empty start of it. The removed text is then cut from
the suggestion. Cases that differ from naive (unhealed) decoding: only prompts whose prefix ends
on a word piece; one token is backed off (a word split into several pieces heals its last one);
punctuation, whitespace and byte pieces are never backed off.

**Completion cache.** A greedy generation is a path of tokens: from the prompt ids ``base``,
the model picked ``generated[0]``, then ``generated[1]`` … A later request whose (healed) prompt
ids are ``base + generated[:k]`` would make the same picks from ``generated[k]`` on, so its
suggestion is read off the path without a model call, provided the path covers everything that
request would show: it ended on ``▁<EOT>`` (or, left to right, at its unit's end), or it is the same prompt (``k == 0``) cut by
``maxNewTokens``, or the request shows one line and the rest of the path already holds a line
break. With healing, the picks from ``generated[k]`` on must also satisfy the constraint (they
do when the path's tokens spell the backed-off text; the constrained argmax is then the path's
token). This is what serves typing-through: the user types the next characters of a shown
suggestion and gets its rest at once.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from code_llama_ls.memory import cache_stats
from code_llama_ls.prompts.fim import InfillPrompt
from code_llama_ls.prompts.tokenization import ModelTokenizer

def _is_word_piece(text: str) -> bool:
    word = text[1:] if text.startswith(" ") else text
    return bool(word) and all(ch.isalnum() or ch == "_" for ch in word)


def _heals(text: str, whitespace: bool) -> bool:
    """Whether a prompt may not end on this piece: a word piece always; with ``whitespace``
    (byte-level BPE, where ``"\n    "`` is a piece and the next word takes the last space),
    a run of whitespace too."""
    return _is_word_piece(text) or (whitespace and bool(text) and text.isspace())


def heal(prompt: InfillPrompt, pieces: list[str], whitespace: bool = False) -> tuple[list[int], str]:
    """The prompt ids with the prefix's last token backed off, and that token's text; the ids
    unchanged and ``""`` when the prefix does not end on a piece that heals (``_heals``)."""
    ids = prompt.ids
    if prompt.prefix_tokens < 2:
        return ids, ""
    index = prompt.prefix_end
    text = pieces[ids[index]] if ids[index] < len(pieces) else ""
    if not _heals(text, whitespace):
        return ids, ""
    return ids[:index] + ids[index + 1:], text


@dataclass
class CachedGeneration:
    base: list[int]  # the ids the generation was fed (healed prompt)
    generated: list[int]  # every generated token (no stop token)
    reason: str  # eot | max_tokens | line_end | unit_end | cancelled | error
    max_new_tokens: int
    generation_id: int


@dataclass(frozen=True)
class CacheHit:
    raw: str  # the suggestion's raw text (healed text already cut)
    tokens: int
    generation_id: int
    reason: str = "eot"  # how the generation it is read from ended


class CompletionCache:
    """Recent greedy generations per document, looked up token-exactly; at most ``max_entries``
    in all (the least recently used document's oldest go first) and ``PER_DOCUMENT`` each."""

    PER_DOCUMENT = 8

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, list[CachedGeneration]] = OrderedDict()

    def __len__(self) -> int:
        return sum(map(len, self._entries.values()))

    def add(self, uri: str, entry: CachedGeneration) -> None:
        entries = self._entries.pop(uri, [])
        entries.append(entry)
        del entries[:-self.PER_DOCUMENT]
        self._entries[uri] = entries
        self._trim()

    def resize(self, max_entries: int) -> None:
        if max_entries != self.max_entries:
            self.max_entries = max_entries
            self._trim()

    def stats(self) -> dict:
        return cache_stats(len(self), self.max_entries, "generations")

    def _trim(self) -> None:
        excess = len(self) - self.max_entries
        while excess > 0:
            uri, oldest = next(iter(self._entries.items()))
            dropped = min(excess, len(oldest))
            del oldest[:dropped]
            excess -= dropped
            if not oldest:
                del self._entries[uri]

    def clear(self) -> None:
        self._entries.clear()

    def lookup(self, uri: str, ids: list[int], heal_text: str, scope: str, max_new_tokens: int,
               tokenizer: ModelTokenizer, pieces: list[str]) -> CacheHit | None:
        for entry in reversed(self._entries.get(uri, ())):
            hit = _read_off(entry, ids, heal_text, scope, max_new_tokens, tokenizer, pieces)
            if hit is not None:
                return hit
        return None


def _read_off(entry: CachedGeneration, ids: list[int], heal_text: str, scope: str, max_new_tokens: int,
              tokenizer: ModelTokenizer, pieces: list[str]) -> CacheHit | None:
    base, generated = entry.base, entry.generated
    k = len(ids) - len(base)
    if entry.max_new_tokens != max_new_tokens or k < 0 or k > len(generated):
        return None
    if ids[len(base):] != generated[:k] or ids[:len(base)] != base:
        return None
    # Healing: the constrained picks from generated[k] on must be the path's own tokens.
    remaining, i = heal_text, k
    while remaining:
        if i >= len(generated):
            return None
        text = pieces[generated[i]]
        if text.startswith(remaining):
            remaining = ""
        elif text and remaining.startswith(text):
            remaining = remaining[len(text):]
        else:
            return None
        i += 1
    rest = generated[k:]
    text = tokenizer.decode_infilling(rest)
    if heal_text:
        text = text[len(heal_text):]
    complete = entry.reason in ("eot", "unit_end") or (k == 0 and entry.reason == "max_tokens") \
        or (scope == "line" and "\n" in text)
    if not complete:
        return None
    return CacheHit(text, len(rest), entry.generation_id, entry.reason)
