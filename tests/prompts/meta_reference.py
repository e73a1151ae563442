"""Test helpers: Meta's reference infilling tokenization, written from ``llama/generation.py``.

Meta's Code Llama (``meta-llama/codellama``) builds infilling prompts with SentencePiece:

- ``Tokenizer.encode(s)``: ``sp.encode(s)`` (SentencePiece's implicit leading ``▁``);
- ``Tokenizer.encode_infilling(s)``: ``sp.encode("☺" + s)[2:]`` (no leading ``▁``);
- ``Tokenizer.decode_infilling(t)``: ``sp.decode([sp.piece_to_id("☺")] + t)[1:]``;
- ``infilling_prompt_tokens``: PSM ``[BOS, ▁<PRE>] + enc(prefix) + [▁<SUF>] +
  enc_infilling(suffix) + [▁<MID>]``; SPM ``[BOS, ▁<PRE>, ▁<SUF>] + enc_infilling(suffix) +
  [▁<MID>] + enc(prefix)``.

This module re-implements exactly that with the ``sentencepiece`` package on the fixture's
``tokenizer.model``; it never uses the code under test. It is imported by the test files in this
folder as a sibling module (``from meta_reference import ...``).
"""

from __future__ import annotations

import functools
import os
import random
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

FIXTURE_ENV = "CODE_LLAMA_LS_TOKENIZER_DIR"
SENTINEL = "☺"
# Pieces SentencePiece matches as user-defined symbols even inside text (the fixture's model
# declares Code Llama's infilling tokens that way); document text containing them needs the
# text-only reference below.
SENTINEL_TEXTS = ("<PRE>", "<SUF>", "<MID>", "<EOT>")


def fixture_dir() -> Path:
    """Where the Code Llama tokenizer replica is expected (env var first, then ../shared)."""
    env = os.environ.get(FIXTURE_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "codellama-tokenizer"


def require_fixture() -> Path:
    """The fixture folder, or skip the calling test with the reason."""
    folder = fixture_dir()
    missing = [name for name in ("tokenizer.model", "tokenizer.json") if not (folder / name).is_file()]
    if missing:
        pytest.skip(
            f"Code Llama fixture tokenizer not found at {folder} (missing {', '.join(missing)}); "
            f"set {FIXTURE_ENV} to a folder with tokenizer.model and tokenizer.json"
        )
    return folder


class MetaReference:
    """Meta's ``Tokenizer`` + ``infilling_prompt_tokens`` on a SentencePiece model."""

    def __init__(self, processor) -> None:
        self.sp = processor
        piece = self.sp.piece_to_id
        self.bos = self.sp.bos_id()
        self.eos = self.sp.eos_id()
        self.prefix_id = piece("▁<PRE>")
        self.suffix_id = piece("▁<SUF>")
        self.middle_id = piece("▁<MID>")
        self.eot_id = piece("▁<EOT>")
        unk = self.sp.unk_id()
        for name, value in [("▁<PRE>", self.prefix_id), ("▁<SUF>", self.suffix_id),
                            ("▁<MID>", self.middle_id), ("▁<EOT>", self.eot_id)]:
            assert value != unk, f"{name} is not a piece of this SentencePiece model"

    def enc(self, s: str) -> list[int]:
        return self.sp.encode(s)

    def enc_infilling(self, s: str) -> list[int]:
        return self.sp.encode(SENTINEL + s)[2:]

    def decode_infilling(self, t: list[int]) -> str:
        return self.sp.decode([self.sp.piece_to_id(SENTINEL)] + list(t))[1:]

    def prompt(self, prefix: str, suffix: str, mode: str) -> list[int]:
        if mode == "spm":
            return [self.bos, self.prefix_id, self.suffix_id, *self.enc_infilling(suffix),
                    self.middle_id, *self.enc(prefix)]
        assert mode == "psm", mode
        return [self.bos, self.prefix_id, *self.enc(prefix), self.suffix_id,
                *self.enc_infilling(suffix), self.middle_id]


@functools.lru_cache(maxsize=None)
def meta_reference(folder: str) -> MetaReference:
    """Meta's algorithm on the fixture's ``tokenizer.model``, loaded as Meta loads it."""
    import sentencepiece as spm

    return MetaReference(spm.SentencePieceProcessor(model_file=str(Path(folder) / "tokenizer.model")))


@functools.lru_cache(maxsize=None)
def text_only_reference(folder: str) -> MetaReference:
    """The same model with the user-defined pieces (``▁<EOT>`` …) turned into control pieces.

    SentencePiece never produces control pieces from input text, so this encodes a document
    that contains ``▁<EOT>`` as the text it is; on text without those strings it equals
    :func:`meta_reference` exactly (the pieces are the same, only their matching differs).
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as model_pb2

    proto = model_pb2.ModelProto()
    proto.ParseFromString((Path(folder) / "tokenizer.model").read_bytes())
    for piece in proto.pieces:
        if piece.type == model_pb2.ModelProto.SentencePiece.USER_DEFINED:
            piece.type = model_pb2.ModelProto.SentencePiece.CONTROL
    return MetaReference(spm.SentencePieceProcessor(model_proto=proto.SerializeToString()))


@functools.lru_cache(maxsize=None)
def infill_tokenizer(folder: str):
    from code_llama_ls.prompts.tokenization import ModelTokenizer

    return ModelTokenizer.from_pretrained(folder, local_files_only=True)


# -- documents and cases -----------------------------------------------------------------------

NON_ASCII = ["é", "café", "naïve", "中文", "注释：中文", "🦙", "llama 🦙 emoji", "e\u0301", "a\u0308\u0301",
             "Ωμέγα", "日本語のコメント", "😀👍", "\u00a0", "ß→∑"]


@functools.lru_cache(maxsize=None)
def stdlib_files(min_size: int = 6_000, max_size: int = 400_000) -> tuple[Path, ...]:
    """A fixed, sorted list of standard-library modules (top-level ``*.py``) of a useful size."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for path in sorted(root.glob("*.py")):
        try:
            size = path.stat().st_size
        except OSError:
            continue
        if min_size <= size <= max_size:
            files.append(path)
    return tuple(files)


@functools.lru_cache(maxsize=None)
def read_source(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if any(tag in text for tag in SENTINEL_TEXTS) or "\r" in text:
        return None
    return text


def usable_sources() -> list[tuple[str, str]]:
    out = []
    for path in stdlib_files():
        text = read_source(path)
        if text is not None:
            out.append((path.name, text))
    return out


@dataclass(frozen=True)
class Case:
    name: str
    before: str
    after: str
    max_context_tokens: int
    max_new_tokens: int
    prefix_ratio: float
    mode: str

    @property
    def text(self) -> str:
        return self.before + self.after


def to_crlf(text: str, cursor: int) -> tuple[str, int]:
    return text.replace("\n", "\r\n"), cursor + text.count("\n", 0, cursor)


def insert_non_ascii(rng: random.Random, text: str, cursor: int, window: int = 6_000) -> tuple[str, int]:
    """Sprinkle non-ASCII snippets over the lines around the cursor (some at column 0, some after
    the indentation, some mid-line) and one right before the cursor."""
    lo = text.rfind("\n", 0, max(0, cursor - window)) + 1
    hi = text.find("\n", min(len(text), cursor + window // 2))
    hi = len(text) if hi < 0 else hi
    head, middle, tail = text[:lo], text[lo:hi], text[hi:]
    rel = cursor - lo
    out: list[str] = []
    pos = 0
    new_rel = None
    for line in middle.splitlines(keepends=True):
        line_start = pos
        pos += len(line)
        if line_start <= rel < pos:  # the cursor line: put a snippet just before the cursor
            col = rel - line_start
            snippet = rng.choice(NON_ASCII)
            line = line[:col] + snippet + line[col:]
            new_rel = sum(map(len, out)) + col + len(snippet)
        elif rng.random() < 0.35:
            body = line.rstrip("\r\n")
            indent = len(body) - len(body.lstrip(" \t"))
            where = rng.choice(["start", "indent", "indent", "mid", "end"])
            col = {"start": 0, "indent": indent, "mid": rng.randint(0, len(body)), "end": len(body)}[where]
            snippet = rng.choice(NON_ASCII)
            if where == "indent" and not body.strip():
                snippet = "# " + snippet
            line = line[:col] + snippet + line[col:]
        out.append(line)
    if new_rel is None:  # cursor at the very end of the window
        new_rel = sum(map(len, out))
    return head + "".join(out) + tail, lo + new_rel


def whitespace_cursor(rng: random.Random, text: str) -> int | None:
    """A cursor right before whitespace: before an indentation, a line break, a space or tab."""
    kind = rng.choice(["indent", "indent", "newline", "space"])
    candidates: list[int] = []
    if kind == "indent":
        start = 0
        while True:
            nl = text.find("\n", start)
            if nl < 0:
                break
            if text[nl + 1:nl + 2] in (" ", "\t"):
                candidates.append(nl + 1)
            start = nl + 1
    elif kind == "newline":
        candidates = [i for i, ch in enumerate(text) if ch == "\n"]
    else:
        candidates = [i for i in range(1, len(text)) if text[i] in " \t" and text[i - 1] not in " \t\n"]
    return rng.choice(candidates) if candidates else None


def tabs_for_indent(text: str) -> str:
    """Indentation by four spaces → tabs (tab-indented files tokenize differently)."""
    lines = []
    for line in text.splitlines(keepends=True):
        body = line.lstrip(" ")
        n = len(line) - len(body)
        lines.append("\t" * (n // 4) + " " * (n % 4) + body)
    return "".join(lines)


CONTEXTS = (128, 256, 512, 1024)
RATIOS = (0.5, 0.75, 0.9)


@functools.lru_cache(maxsize=None)
def exactness_cases(seed: int = 20261126, bases: int = 40) -> tuple[Case, ...]:
    """Deterministic cases cut from standard-library files: every base position yields a plain,
    a CRLF, a non-ASCII and a whitespace-cursor document, each in PSM and SPM."""
    rng = random.Random(seed)
    sources = usable_sources()
    assert len(sources) >= 20, "too few standard-library files found"
    cases: list[Case] = []

    def add(name: str, text: str, cursor: int) -> None:
        ctx = rng.choice(CONTEXTS)
        new = rng.randint(32, 64)
        ratio = rng.choice(RATIOS)
        for mode in ("psm", "spm"):
            cases.append(Case(f"{name}-{mode}", text[:cursor], text[cursor:], ctx, new, ratio, mode))

    for i in range(bases):
        fname, text = rng.choice(sources)
        # mostly deep inside the file (the prefix gets cut), sometimes near the top
        cursor = rng.randint(0, min(len(text), 300)) if i % 10 == 9 else rng.randint(len(text) // 5, len(text))
        add(f"{i}:{fname}@{cursor}:plain", text, cursor)
        crlf, c2 = to_crlf(text, cursor)
        add(f"{i}:{fname}@{cursor}:crlf", crlf, c2)
        na, c3 = insert_non_ascii(rng, text, cursor)
        if rng.random() < 0.3:
            na, c3 = to_crlf(na, c3)
        add(f"{i}:{fname}@{cursor}:non-ascii", na, c3)
        ws_text = tabs_for_indent(text) if rng.random() < 0.3 else text
        c4 = whitespace_cursor(rng, ws_text)
        if c4 is not None:
            if rng.random() < 0.3:
                ws_text, c4 = to_crlf(ws_text, c4)
            add(f"{i}:{fname}@{c4}:ws-cursor", ws_text, c4)
    return tuple(cases)


# -- line boundaries ---------------------------------------------------------------------------

def line_starts(text: str) -> list[int]:
    """Offsets where lines start (0 and after each ``\\r\\n``, ``\\n`` or lone ``\\r``)."""
    starts = [0]
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\r" and i + 1 < n and text[i + 1] == "\n":
            starts.append(i + 2)
            i += 2
            continue
        if ch in "\r\n":
            starts.append(i + 1)
        i += 1
    return starts


def is_line_start(text: str, pos: int) -> bool:
    if pos == 0:
        return True
    prev = text[pos - 1]
    return prev == "\n" or (prev == "\r" and text[pos:pos + 1] != "\n")
