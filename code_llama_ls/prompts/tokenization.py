"""Tokenization for any vocabulary, and Code Llama's infilling, token-exact with Meta's reference.

**SentencePiece-style vocabularies** (spaces as ``▁``: Llama, Code Llama). Meta's reference
(``llama/tokenizer.py``) encodes with SentencePiece: ``encode`` adds the implicit leading ``▁``;
``encode_infilling`` drops it by encoding ``"☺" + s`` and removing the sentinel's tokens. A plain
Hugging Face ``encode`` differs from SentencePiece on text that starts with spaces (its Metaspace
pre-tokenizer does not prepend ``▁`` before an existing one; a tokenizer converted from a GGUF
adds no ``▁`` at all), which is exactly what a budget-truncated prefix looks like. We therefore
build both encodings from the sentinel trick, where the text never starts the encoded string,
and define ``enc(s) = enc_infilling(" " + s)``, which is what SentencePiece's dummy prefix does.

**Byte-level BPE vocabularies** (GPT-2 style: SmolLM2, StarCoder, Qwen …) have no dummy prefix:
both encodings are the plain encoding, and BOS is added only where the tokenizer's own rule
(its post-processor, ``add_bos_token``) adds it.

Document text never becomes a control token: special-token matching is switched off, so a file
containing ``▁<EOT>``, ``<s>`` or ``<|im_end|>`` is encoded as ordinary text. Only a chat
template's own text (:meth:`ModelTokenizer.encode_template`) has its control tokens parsed.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from code_llama_ls.memory import Lru
from code_llama_ls.model_files import find_gguf, looks_like_path

SENTINEL = "☺"
"""The character Meta's reference prepends to encode without SentencePiece's dummy prefix."""

INFILL_TOKENS = {
    "prefix": ("▁<PRE>", "<PRE>"),
    "suffix": ("▁<SUF>", "<SUF>"),
    "middle": ("▁<MID>", "<MID>"),
    "eot": ("▁<EOT>", "<EOT>"),
}
"""Code Llama's infilling tokens (each role: its piece, then the piece's other spelling)."""

FIM_FORMATS = {"codellama": INFILL_TOKENS}
"""The FIM token sets we know, by format name; a vocabulary with all of one set's tokens can
infill with it (``prompts/capabilities.py`` decides whether the model was trained to). Meta's PSM
and SPM layouts (``prompts/fim.py``) are the only layouts so far."""

STOP_PIECES = ("</s>", "<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|EOT|>", "<|end|>")
"""Control tokens that end a generation in the families we know, whichever of them the
vocabulary has as a special token (besides its EOS)."""


class TokenizerError(RuntimeError):
    """The tokenizer cannot be loaded or cannot build Code Llama infilling prompts."""


@dataclass(frozen=True)
class SpecialIds:
    bos: int | None
    eos: int | None
    prefix: int | None = None  # Code Llama's FIM tokens; None where the vocabulary lacks them
    suffix: int | None = None
    middle: int | None = None
    eot: int | None = None
    fim_format: str | None = None  # the FIM_FORMATS entry whose tokens these are

    @property
    def fim(self) -> bool:
        return None not in (self.bos, self.prefix, self.suffix, self.middle, self.eot)


class ModelTokenizer:
    """Encodes prompt texts and decodes completions: Meta's reference for SentencePiece-style
    vocabularies, the plain encoding for byte-level BPE."""

    LINE_CACHE_LINES = 65_536
    """Default bound of the per-line token cache (``tokenizerLineCache`` sets it)."""

    def __init__(self, tokenizer: Tokenizer, special: SpecialIds, name: str = "", *, add_bos: bool = True,
                 chat_template: str | None = None, special_tokens: dict[str, str] | None = None) -> None:
        self._tokenizer = copy.deepcopy(tokenizer)
        self._tokenizer.encode_special_tokens = True
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.piece_table: list[str] | None = None  # built by ``piece_texts``
        self._templated: Tokenizer | None = None  # a copy that parses control tokens, made when a template needs it
        self.special = special
        self.name = name
        self.add_bos = add_bos
        """Whether BOS starts a plain (left-to-right) prompt; Meta's FIM and chat formats always have it."""
        self.chat_template = chat_template
        self.special_tokens = dict(special_tokens or {})  # bos_token, eos_token … for the chat template
        self.sentencepiece = _spaces_are_metaspace(self._tokenizer)
        self._sentinel_ids = self._raw_encode(SENTINEL)
        self._sentinel_text = self._tokenizer.decode(self._sentinel_ids, skip_special_tokens=False)
        self.line_cache: Lru[str, list[int]] = Lru(self.LINE_CACHE_LINES)
        self.vocab_size = max(self._tokenizer.get_vocab(with_added_tokens=True).values()) + 1
        self.lines_are_independent = _no_piece_crosses_a_line_break(self._tokenizer, self.vocab_size)

    # -- loading -------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, local_files_only: bool = False) -> "ModelTokenizer":
        """Load the tokenizer of a folder, hub id or GGUF file, as the model's authors saved it.

        We read ``tokenizer.json`` itself rather than through ``AutoTokenizer``: transformers'
        Code Llama class adds a ``<FILL_ME>`` token of its own, which would turn document text
        into an id the model does not have. ``tokenizer_config.json`` beside it gives the BOS
        rule and the chat template. A GGUF file (or a folder holding one and no
        ``tokenizer.json``) is converted by transformers; a repository without ``tokenizer.json``
        falls back to transformers' conversion of ``tokenizer.model``.
        """
        gguf = find_gguf(name_or_path)
        if gguf is not None and (gguf == Path(name_or_path).expanduser() or not (gguf.parent / "tokenizer.json").is_file()):
            return cls._from_transformers(str(gguf.parent), name=name_or_path, gguf_file=gguf.name)
        path = _find_tokenizer_json(name_or_path, local_files_only)
        if path is not None:
            config = _tokenizer_config(name_or_path, path.parent, local_files_only)
            return cls.from_file(path, name=name_or_path, config=config)
        return cls._from_transformers(name_or_path, name=name_or_path, local_files_only=local_files_only)

    @classmethod
    def _from_transformers(cls, name_or_path: str, *, name: str, **kwargs: Any) -> "ModelTokenizer":
        from transformers import AutoTokenizer  # heavy import, only for GGUF files and the fallback

        try:
            hf = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
        except Exception as exc:  # transformers raises OSError, ValueError, hub errors …
            raise TokenizerError(f"cannot load tokenizer {name!r}: {exc}") from exc
        backend = getattr(hf, "backend_tokenizer", None)
        if backend is None:
            raise TokenizerError(f"tokenizer {name!r} has no fast (tokenizers) backend")
        config = {key: getattr(hf, key, None) for key in ("bos_token", "eos_token", "unk_token", "pad_token")}
        config["add_bos_token"] = getattr(hf, "add_bos_token", None)
        config["chat_template"] = getattr(hf, "chat_template", None)
        return cls.from_tokenizer(backend, name=name, eos_id=hf.eos_token_id, config=config)

    @classmethod
    def from_file(cls, tokenizer_json: str | Path, *, name: str = "", config: dict | None = None) -> "ModelTokenizer":
        try:
            tokenizer = Tokenizer.from_file(str(tokenizer_json))
        except Exception as exc:  # the Rust side raises plain Exceptions for bad JSON
            raise TokenizerError(f"cannot read {tokenizer_json}: {exc}") from exc
        return cls.from_tokenizer(tokenizer, name=name or str(tokenizer_json), config=config)

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer, *, name: str = "", eos_id: int | None = None,
                       config: dict | None = None) -> "ModelTokenizer":
        """``config``: ``tokenizer_config.json``'s fields (``bos_token``, ``eos_token``,
        ``add_bos_token``, ``chat_template``), where the model has them."""
        config = config or {}

        def find(*pieces: str | None) -> int | None:
            for piece in pieces:
                token_id = tokenizer.token_to_id(piece) if piece else None
                if token_id is not None:
                    return token_id
            return None

        ids: dict[str, Any] = {}
        for fim_format, tokens in FIM_FORMATS.items():
            found = {role: find(*pieces) for role, pieces in tokens.items()}
            if None not in found.values():  # a partial set is no FIM set
                ids = {**found, "fim_format": fim_format}
                break
        bos = find(_token_text(config.get("bos_token")), "<s>")
        eos = eos_id if eos_id is not None else find(_token_text(config.get("eos_token")), "</s>")
        add_bos = config.get("add_bos_token")
        if add_bos is None:  # the tokenizer's own rule: does its post-processor add BOS?
            with_special = tokenizer.encode("a", add_special_tokens=True).ids
            add_bos = bos is not None and with_special[:1] == [bos]
        template = config.get("chat_template")
        specials = {key: text for key in ("bos_token", "eos_token", "unk_token", "pad_token")
                    if (text := _token_text(config.get(key)))}
        return cls(tokenizer, SpecialIds(bos=bos, eos=eos, **ids), name=name, add_bos=bool(add_bos),
                   chat_template=template if isinstance(template, str) else None, special_tokens=specials)

    def require_infilling(self) -> None:
        if not self.special.fim:
            missing = [INFILL_TOKENS[role][0] for role in INFILL_TOKENS if self.token_id(INFILL_TOKENS[role][0]) is None
                       and self.token_id(INFILL_TOKENS[role][1]) is None]
            raise TokenizerError(
                f"tokenizer {self.name!r} lacks Code Llama's infilling tokens {', '.join(missing) or '<s>'}; "
                "fill-in-the-middle needs a Code Llama (base or Instruct 7B/13B) tokenizer"
            )

    # -- encoding ------------------------------------------------------------------------

    def _raw_encode(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False).ids

    def encode_infilling(self, text: str) -> list[int]:
        """``text``'s ids without an implicit leading ``▁`` (SentencePiece) or as they are (BPE)."""
        if not text:
            return []
        if not self.sentencepiece:
            return self._raw_encode(text)
        ids = self._raw_encode(SENTINEL + text)
        n = len(self._sentinel_ids)
        if ids[:n] != self._sentinel_ids:
            raise TokenizerError(
                f"the sentinel {SENTINEL!r} merged with the text that follows it; "
                "this vocabulary cannot be encoded token-exactly"
            )
        return ids[n:]

    def encode(self, text: str) -> list[int]:
        """``text``'s ids as the start of a text: SentencePiece's implicit leading ``▁`` where the
        vocabulary is SentencePiece-style (no BOS either way)."""
        if not text:
            return []
        return self.encode_infilling(" " + text) if self.sentencepiece else self._raw_encode(text)

    def encode_template(self, text: str) -> list[int]:
        """A chat template's own text, whose control tokens (``<|im_start|>`` …) are parsed."""
        if self._templated is None:
            self._templated = copy.deepcopy(self._tokenizer)
            self._templated.encode_special_tokens = False
        return self._templated.encode(text, add_special_tokens=False).ids

    def prompt_start(self) -> list[int]:
        """What a plain (left-to-right) prompt starts with: BOS where the tokenizer adds it."""
        return [self.special.bos] if self.add_bos and self.special.bos is not None else []

    def line_ids(self, line: str, *, first: bool) -> list[int]:
        """Ids of one line (with its line break) as part of a longer text; cached.

        ``first`` marks the line that starts an ``enc`` text (it carries the leading ``▁``).
        """
        key = (" " + line) if first and self.sentencepiece else line
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
        merge across one (true of Llama's vocabulary, not of byte-level BPE's ``"\n    "``
        pieces); otherwise the joined text is encoded.
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
        """The tokens that end a completion: ``▁<EOT>`` where the model infills, EOS, and the
        family's other end tokens (``<|endoftext|>``, ``<|im_end|>`` …) that are special here."""
        added = self._special_added()
        stops = {self.special.eos, self.special.eot} | {added[text] for text in STOP_PIECES if text in added}
        return frozenset(i for i in stops if i is not None)

    def control_ids(self) -> frozenset[int]:
        """Every id that is not text: BOS, EOS, the FIM tokens and the vocabulary's special tokens."""
        s = self.special
        ids = {s.bos, s.eos, s.prefix, s.suffix, s.middle, s.eot, *self._special_added().values()}
        return frozenset(i for i in ids if i is not None)

    def _special_added(self) -> dict[str, int]:
        return {token.content: token_id for token_id, token in self._tokenizer.get_added_tokens_decoder().items()
                if token.special}


def piece_texts(tokenizer: ModelTokenizer) -> list[str]:
    """Each id's text as ``decode_infilling`` shows it; control tokens map to ``""``. Built once
    and kept on the tokenizer itself (a reloaded model's new tokenizer builds its own)."""
    if tokenizer.piece_table is None:
        special = tokenizer.control_ids() | tokenizer.stop_ids()
        tokenizer.piece_table = ["" if i in special else tokenizer.decode_infilling([i])
                                 for i in range(tokenizer.vocab_size)]
    return tokenizer.piece_table


def _token_text(value: Any) -> str | None:
    """A token as ``tokenizer_config.json`` writes it: a string or ``{"content": …}``."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def _tokenizer_config(name_or_path: str, folder: Path, local_files_only: bool) -> dict:
    """``tokenizer_config.json`` (and ``chat_template.jinja``) beside ``tokenizer.json``: in the
    folder, or fetched from the hub repository (which need not have them)."""
    if not looks_like_path(name_or_path):
        from huggingface_hub import hf_hub_download

        for filename in ("tokenizer_config.json", "chat_template.jinja"):
            try:
                hf_hub_download(name_or_path, filename, local_files_only=local_files_only)
            except Exception:  # absent from the repository, not cached, offline: the rules default
                pass
    config: dict = {}
    path = folder / "tokenizer_config.json"
    if path.is_file():
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            config = {}
    template = folder / "chat_template.jinja"
    if not config.get("chat_template") and template.is_file():
        config["chat_template"] = template.read_text(encoding="utf-8")
    return config if isinstance(config, dict) else {}


def _spaces_are_metaspace(tokenizer: Tokenizer) -> bool:
    """True for SentencePiece-style vocabularies, which spell a space as ``▁``."""
    return any("▁" in piece for piece in tokenizer.encode(" a b", add_special_tokens=False).tokens)


def _no_piece_crosses_a_line_break(tokenizer: Tokenizer, vocab_size: int) -> bool:
    """True when every piece's text containing a line break ends with it ("\r\n" counts as one).

    Pieces are read as text (a byte-level vocabulary spells ``"\n"`` as ``Ċ``)."""
    texts = tokenizer.decode_batch([[i] for i in range(vocab_size)], skip_special_tokens=False)
    for text in texts:
        body = text.replace("\r\n", "\n")
        for brk in ("\n", "\r"):
            index = body.find(brk)
            if index != -1 and index != len(body) - 1:
                return False
    return True


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
