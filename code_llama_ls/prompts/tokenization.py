"""Code Llama's infilling tokenization, token-exact with Meta's reference.

Meta's reference (``llama/tokenizer.py``) encodes with SentencePiece: ``encode`` adds the
implicit leading ``▁``; ``encode_infilling`` drops it by encoding ``"☺" + s`` and removing the
sentinel's tokens. A plain Hugging Face ``encode`` differs from SentencePiece on text that starts
with spaces (its Metaspace pre-tokenizer does not prepend ``▁`` before an existing one), which is
exactly what a budget-truncated prefix looks like. We therefore build both encodings from the
sentinel trick on the fast tokenizer, where the text never starts with a space, and define
``enc(s) = enc_infilling(" " + s)``, which is what SentencePiece's dummy prefix does.

Document text never becomes a control token: special-token matching is switched off, so a file
containing ``▁<EOT>`` or ``<s>`` is encoded as ordinary text.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from code_llama_ls.memory import Lru

SENTINEL = "☺"
"""The character Meta's reference prepends to encode without SentencePiece's dummy prefix."""

INFILL_TOKENS = {
    "prefix": ("▁<PRE>", "<PRE>"),
    "suffix": ("▁<SUF>", "<SUF>"),
    "middle": ("▁<MID>", "<MID>"),
    "eot": ("▁<EOT>", "<EOT>"),
}


class TokenizerError(RuntimeError):
    """The tokenizer cannot be loaded or cannot build Code Llama infilling prompts."""


@dataclass(frozen=True)
class SpecialIds:
    bos: int
    eos: int | None
    prefix: int
    suffix: int
    middle: int
    eot: int


class InfillTokenizer:
    """Encodes prompt texts and decodes completions exactly as Meta's reference does."""

    LINE_CACHE_LINES = 65_536
    """Default bound of the per-line token cache (``tokenizerLineCache`` sets it)."""

    def __init__(self, tokenizer: Tokenizer, special: SpecialIds, name: str = "") -> None:
        self._tokenizer = copy.deepcopy(tokenizer)
        self._tokenizer.encode_special_tokens = True
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.special = special
        self.name = name
        self._sentinel_ids = self._raw_encode(SENTINEL)
        self._sentinel_text = self._tokenizer.decode(self._sentinel_ids, skip_special_tokens=False)
        self.line_cache: Lru[str, list[int]] = Lru(self.LINE_CACHE_LINES)
        self.lines_are_independent = _no_piece_crosses_a_line_break(self._tokenizer)
        self.vocab_size = max(self._tokenizer.get_vocab(with_added_tokens=True).values()) + 1

    # -- loading -------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, local_files_only: bool = False) -> "InfillTokenizer":
        """Load ``tokenizer.json`` from a local folder or a hub id, as the model's authors saved it.

        We read the file itself rather than through ``AutoTokenizer``: transformers' Code Llama
        class adds a ``<FILL_ME>`` token of its own, which would turn document text into an id
        the model does not have. A repository without ``tokenizer.json`` falls back to
        transformers' conversion of ``tokenizer.model``.
        """
        path = _find_tokenizer_json(name_or_path, local_files_only)
        if path is not None:
            return cls.from_file(path, name=name_or_path)
        from transformers import AutoTokenizer  # heavy import, only for the fallback

        try:
            hf = AutoTokenizer.from_pretrained(name_or_path, local_files_only=local_files_only)
        except Exception as exc:  # transformers raises OSError, ValueError, hub errors …
            raise TokenizerError(f"cannot load tokenizer {name_or_path!r}: {exc}") from exc
        backend = getattr(hf, "backend_tokenizer", None)
        if backend is None:
            raise TokenizerError(f"tokenizer {name_or_path!r} has no fast (tokenizers) backend")
        return cls.from_tokenizer(backend, name=name_or_path, eos_id=hf.eos_token_id)

    @classmethod
    def from_file(cls, tokenizer_json: str | Path, *, name: str = "") -> "InfillTokenizer":
        try:
            tokenizer = Tokenizer.from_file(str(tokenizer_json))
        except Exception as exc:  # the Rust side raises plain Exceptions for bad JSON
            raise TokenizerError(f"cannot read {tokenizer_json}: {exc}") from exc
        return cls.from_tokenizer(tokenizer, name=name or str(tokenizer_json))

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer, *, name: str = "", eos_id: int | None = None) -> "InfillTokenizer":
        def find(*pieces: str) -> int | None:
            for piece in pieces:
                token_id = tokenizer.token_to_id(piece)
                if token_id is not None:
                    return token_id
            return None

        ids: dict[str, Any] = {role: find(*pieces) for role, pieces in INFILL_TOKENS.items()}
        missing = [INFILL_TOKENS[role][0] for role, value in ids.items() if value is None]
        if missing:
            raise TokenizerError(
                f"tokenizer {name!r} lacks Code Llama's infilling tokens {', '.join(missing)}; "
                "fill-in-the-middle needs a Code Llama (base or Python) tokenizer"
            )
        bos = find("<s>")
        if bos is None:
            raise TokenizerError(f"tokenizer {name!r} has no BOS token <s>")
        eos = eos_id if eos_id is not None else find("</s>")
        return cls(tokenizer, SpecialIds(bos=bos, eos=eos, **ids), name=name)

    # -- encoding ------------------------------------------------------------------------

    def _raw_encode(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False).ids

    def encode_infilling(self, text: str) -> list[int]:
        """SentencePiece's encoding of ``text`` without the implicit leading ``▁``."""
        if not text:
            return []
        ids = self._raw_encode(SENTINEL + text)
        n = len(self._sentinel_ids)
        if ids[:n] != self._sentinel_ids:
            raise TokenizerError(
                f"the sentinel {SENTINEL!r} merged with the text that follows it; "
                "this vocabulary cannot be encoded token-exactly"
            )
        return ids[n:]

    def encode(self, text: str) -> list[int]:
        """SentencePiece's encoding of ``text`` with its implicit leading ``▁`` (no BOS)."""
        if not text:
            return []
        return self.encode_infilling(" " + text)

    def line_ids(self, line: str, *, first: bool) -> list[int]:
        """Ids of one line (with its line break) as part of a longer text; cached.

        ``first`` marks the line that starts an ``enc`` text (it carries the leading ``▁``).
        """
        key = (" " + line) if first else line
        ids = self.line_cache.get(key)
        if ids is None:
            ids = self.encode_infilling(key)
            self.line_cache.put(key, ids)
        return ids

    def count_line(self, line: str, *, first: bool) -> int:
        return len(self.line_ids(line, first=first))

    def encode_lines(self, lines: list[str], *, leading_space: bool) -> list[int]:
        """``encode`` (or ``encode_infilling``) of ``"".join(lines)``, from cached line ids.

        Exact when no vocabulary piece continues past a line break, so that BPE can never
        merge across one (true of Llama's vocabulary); otherwise the joined text is encoded.
        """
        if not self.lines_are_independent:
            text = "".join(lines)
            return self.encode(text) if leading_space else self.encode_infilling(text)
        ids: list[int] = []
        for line in lines:
            if line:
                ids.extend(self.line_ids(line, first=leading_space and not ids))
        return ids

    # -- decoding ------------------------------------------------------------------------

    def decode_infilling(self, ids: list[int]) -> str:
        """Decode a completion keeping a leading space, as Meta's ``decode_infilling`` does."""
        if not ids:
            return ""
        text = self._tokenizer.decode(self._sentinel_ids + list(ids), skip_special_tokens=False)
        if text.startswith(self._sentinel_text):
            return text[len(self._sentinel_text):]
        # The decoder changed the sentinel (it never should); fall back to a plain decode.
        return self._tokenizer.decode(list(ids), skip_special_tokens=False)

    def token_id(self, piece: str) -> int | None:
        """The id of a vocabulary piece or added token (``<step>``, ``</s>`` …), or None."""
        return self._tokenizer.token_to_id(piece)

    def stop_ids(self) -> frozenset[int]:
        stops = {self.special.eot}
        if self.special.eos is not None:
            stops.add(self.special.eos)
        return frozenset(stops)


def _no_piece_crosses_a_line_break(tokenizer: Tokenizer) -> bool:
    """True when every piece containing a line break ends with it ("\\r\\n" counts as one)."""
    for piece in tokenizer.get_vocab(with_added_tokens=False):
        body = piece.replace("\r\n", "\n")
        for brk in ("\n", "\r"):
            index = body.find(brk)
            if index != -1 and index != len(body) - 1:
                return False
    return True


def looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or "\\" in name or Path(name).expanduser().exists()


def _find_tokenizer_json(name_or_path: str, local_files_only: bool) -> Path | None:
    """The tokenizer.json of a folder or hub repository; None if it has none."""
    if looks_like_path(name_or_path):
        folder = Path(name_or_path).expanduser()
        if not folder.is_dir():
            raise TokenizerError(f"no such folder {name_or_path!r}")
        candidate = folder / "tokenizer.json"
        return candidate if candidate.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(name_or_path, "tokenizer.json", local_files_only=local_files_only))
    except LocalEntryNotFoundError as exc:
        where = "in the local cache, and downloads are off (--local-files-only / `localFilesOnly`)" \
            if local_files_only else "locally, and the hub is unreachable"
        raise TokenizerError(f"cannot find the tokenizer of {name_or_path!r} {where}") from exc
    except EntryNotFoundError:
        return None
    except Exception as exc:  # not cached, offline, unknown or gated repository …
        where = "in the local cache (--local-files-only / `localFilesOnly`)" if local_files_only \
            else "on the Hugging Face hub"
        raise TokenizerError(f"cannot get the tokenizer of {name_or_path!r} {where}: {exc}") from exc
