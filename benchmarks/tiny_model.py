"""Small ``LlamaForCausalLM`` models for tests and benchmarks, built locally and cached.

No model weights can be downloaded here, so tests build their own:

- :func:`trained_model`: a 2-layer, 64-wide Llama that has memorised :data:`KNOWN_EXAMPLES`:
  greedy decoding on Meta's infilling prompt (PSM and SPM) yields exactly
  ``encode_infilling(middle) + [▁<EOT>]``, with a wide top-1/top-2 logit margin at every step.
- :func:`random_model` / :func:`mid_model`: random weights, for timing and shapes only.

Every model folder holds the weights (``save_pretrained``, safetensors) and the tokenizer files, so
``AutoTokenizer`` / ``AutoModelForCausalLM`` / ``ModelTokenizer`` load it with
``local_files_only=True``. The tokenizer is the Code Llama replica in ``../shared/fixtures`` when
present, otherwise a small Llama-style BPE trained on standard-library source
(:func:`build_fallback_tokenizer`).

Folders live under ``$CODE_LLAMA_LS_TEST_CACHE`` (default ``~/.cache/code-llama-ls/test-models``),
named by a hash of everything that determines them, and are published with an atomic
``os.replace``, so parallel test processes can share the cache.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import sys
import sysconfig
import tempfile
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from code_llama_ls.prompts.fim import assemble
from code_llama_ls.prompts.tokenization import ModelTokenizer

FORMAT_VERSION = 2
"""Bump when the build procedure changes in a way the cache key would not otherwise see."""

TOKENIZER_ENV = "CODE_LLAMA_LS_TOKENIZER_DIR"
CACHE_ENV = "CODE_LLAMA_LS_TEST_CACHE"
MARKER = "tiny_model.json"
"""Written last into every model folder; its presence means the folder is complete."""

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


@dataclass(frozen=True)
class InfillExample:
    prefix: str  # document text before the cursor
    suffix: str  # document text after the cursor
    middle: str  # the completion the trained model must produce (then ▁<EOT>)


KNOWN_EXAMPLES: tuple[InfillExample, ...] = (
    # A function body at the end of a file.
    InfillExample(prefix="def add(a, b):\n    ", suffix="\n", middle="return a + b"),
    # A method body between two methods.
    InfillExample(
        prefix=(
            "class Counter:\n"
            "    def __init__(self):\n"
            "        self.count = 0\n"
            "\n"
            "    def increment(self):\n"
            "        "
        ),
        suffix="\n\n    def reset(self):\n        self.count = 0\n",
        middle="self.count += 1",
    ),
    # Mid-line: the arguments of a call; the completion does not echo the closing ")".
    InfillExample(
        prefix="import os\n\npath = os.path.join(",
        suffix=")\n",
        middle="base, name",
    ),
    # Two lines, ending inside the loop's block.
    InfillExample(
        prefix="def total(items):\n    result = 0\n    ",
        suffix="\n    return result\n",
        middle="for item in items:\n        result += item",
    ),
    # The completion starts with a space: decoding must keep it.
    InfillExample(
        prefix="from geometry import compute\n\nx =",
        suffix="\nprint(x)\n",
        middle=" compute(1, 2)",
    ),
    # Inside a pair the editor auto-closed: the completion writes the arguments and the closer,
    # so the suggestion's range must cover the ")" already after the cursor (replace_end 1).
    InfillExample(
        prefix="def longest_side(width, height):\n    return max(",
        suffix=")\n",
        middle="width, height)",
    ),
)


@dataclass(frozen=True)
class InstructExample:
    """An instruct action (explain/docstring/tests) on a file, and the model's known answer.

    The prompt is the one the server builds (``actions.prompt.action_prompt``) for the action at
    ``line`` of ``source`` saved as ``file`` at the workspace root, without added context.
    """

    kind: str
    file: str
    source: str
    line: int
    answer: str  # then </s>


INSTRUCT_SOURCE = "def add(a, b):\n    return a + b\n"
INSTRUCT_EXAMPLES: tuple[InstructExample, ...] = (
    InstructExample("docstring", "add.py", INSTRUCT_SOURCE, 0, "Add two numbers and return their sum."),
    InstructExample("tests", "add.py", INSTRUCT_SOURCE, 0,
                    "```python\nfrom add import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n```"),
    InstructExample("explain", "add.py", INSTRUCT_SOURCE, 0, "It returns the sum of `a` and `b`."),
)


def instruct_prompt_ids(tok: ModelTokenizer, ex: InstructExample) -> list[int]:
    """The ids the server sends for ``ex`` (explain: the whole file selected)."""
    from code_llama_ls.actions.prompt import action_prompt
    from code_llama_ls.actions.service import target_for
    from code_llama_ls.documents import Document

    document = Document(uri=f"file:///workspace/{ex.file}", text=ex.source, version=1)
    if ex.kind == "explain":
        return action_prompt(tok, "explain", document, 0, len(ex.source)).ids
    line_start = document.line_range(ex.line)[0]
    target = target_for(ex.kind, document, line_start, line_start)
    module = ex.file.rsplit(".", 1)[0] if ex.kind == "tests" else None
    return action_prompt(tok, ex.kind, document, target.start, target.end, target=target, module=module).ids


# -- tokenizer ---------------------------------------------------------------------------


def fixture_tokenizer_dir() -> Path | None:
    """The Code Llama tokenizer replica, or ``None`` where it is absent.

    ``$CODE_LLAMA_LS_TOKENIZER_DIR`` overrides the default location
    (``<repo>/../shared/fixtures/codellama-tokenizer``); pointing it at a folder without
    ``tokenizer.json`` forces the fallback tokenizer.
    """
    override = os.environ.get(TOKENIZER_ENV)
    if override:
        folder = Path(override).expanduser()
    else:
        folder = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "codellama-tokenizer"
    return folder if (folder / "tokenizer.json").is_file() else None


# Fixed, deterministic training corpus: standard-library modules present in every supported
# Python (a missing one is skipped; the corpus then differs, and so does the cache key).
_FALLBACK_SOURCES = (
    "typing.py", "dataclasses.py", "argparse.py", "collections/__init__.py", "functools.py",
    "os.py", "inspect.py", "subprocess.py", "threading.py", "logging/__init__.py",
    "json/encoder.py", "enum.py", "contextlib.py", "shutil.py", "tempfile.py", "textwrap.py",
    "ast.py", "socket.py", "asyncio/base_events.py", "asyncio/tasks.py", "unittest/case.py",
    "http/client.py", "email/message.py", "urllib/parse.py", "tarfile.py", "configparser.py",
    "csv.py", "datetime.py", "_pydecimal.py", "fractions.py", "random.py", "statistics.py",
    "pickle.py", "pprint.py", "difflib.py", "traceback.py", "warnings.py", "tokenize.py",
    "_pyio.py", "pydoc.py",
)
_FALLBACK_VOCAB = 4000
_FALLBACK_MIN_CHARS = 500_000
_INFILL_PIECES = ("▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>")
_BYTE_PIECES = tuple(f"<0x{i:02X}>" for i in range(256))
_ASCII_ALPHABET = [chr(c) for c in range(33, 127)] + ["▁", "\n", "\t"]
# Training-time split, so learned pieces look like SentencePiece's on Llama: a newline is a
# piece of its own, a word carries one leading space, longer runs of spaces are separate
# (``"    return"`` → ``▁▁▁``, ``▁return``).
_TRAIN_SPLIT = r"\n|  *(?= )| ?[^ \n]+| +"


def _fallback_corpus() -> list[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for name in _FALLBACK_SOURCES:
        path = stdlib / name
        if path.is_file():
            texts.append(path.read_text(encoding="utf-8"))
    if sum(map(len, texts)) < _FALLBACK_MIN_CHARS:
        raise RuntimeError(
            f"too little standard-library source under {stdlib} to train the fallback tokenizer"
        )
    return texts


def _tokenizer_config() -> dict[str, Any]:
    return {
        "backend": "tokenizers",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": None,
        "model_max_length": 1000000000000000019884624838656,
        "tokenizer_class": "CodeLlamaTokenizer",
        "add_bos_token": True,
        "add_eos_token": False,
        "prefix_token": "▁<PRE>",
        "suffix_token": "▁<SUF>",
        "middle_token": "▁<MID>",
        "eot_token": "▁<EOT>",
    }


def build_fallback_tokenizer(out_dir: Path) -> Path:
    """Train a small Llama-style BPE on standard-library source into ``out_dir``; return it.

    Layout as Llama's: ``<unk>``, ``<s>``, ``</s>`` at 0-2, the 256 ``<0xNN>`` byte pieces at
    3-258, about 3,700 learned pieces, then the added special tokens ``▁<PRE>``, ``▁<SUF>``,
    ``▁<MID>``, ``▁<EOT>``. Metaspace pre-tokenizer (``prepend_scheme="first"``, no split) and
    byte fallback, as in the Llama 2 ``tokenizer.json``. Deterministic for a given Python.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_TRAIN_SPLIT), behavior="isolated"),
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False),
    ])
    trainer = trainers.BpeTrainer(
        vocab_size=_FALLBACK_VOCAB,
        special_tokens=["<unk>", "<s>", "</s>", *_BYTE_PIECES],
        initial_alphabet=_ASCII_ALPHABET,
        limit_alphabet=len(_ASCII_ALPHABET) + 30,
        show_progress=False,
    )
    tok.train_from_iterator(_fallback_corpus(), trainer=trainer)

    data = json.loads(tok.to_str())
    # The byte pieces are ordinary vocabulary (as in Llama), not added tokens that text could hit.
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] not in _BYTE_PIECES]
    data["model"]["unk_token"] = "<unk>"  # what transformers sets on loading anyway
    # Encoding runs BPE over the whole text (no split), so merges of space runs must rank after
    # every word merge; otherwise "\n    return" would become ▁▁▁▁, re, turn rather than
    # Llama's ▁▁▁, ▁return.
    merges = data["model"]["merges"]
    spaces = [m for m in merges if not "".join(m).strip("▁")]
    data["model"]["merges"] = [m for m in merges if "".join(m).strip("▁")] + spaces
    tok = Tokenizer.from_str(json.dumps(data, ensure_ascii=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([
        decoders.Replace("▁", " "),
        decoders.ByteFallback(),
        decoders.Fuse(),
        decoders.Strip(" ", 1, 0),
    ])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s>:1 $B:1", special_tokens=[("<s>", 1)]
    )
    tok.add_special_tokens([AddedToken(p, normalized=False, special=True) for p in _INFILL_PIECES])
    for expected_id, piece in enumerate(("<unk>", "<s>", "</s>", *_BYTE_PIECES)):
        if tok.token_to_id(piece) != expected_id:
            raise RuntimeError(f"fallback tokenizer: {piece!r} is not at id {expected_id}")

    tok.save(str(out_dir / "tokenizer.json"))
    (out_dir / "tokenizer_config.json").write_text(json.dumps(_tokenizer_config(), indent=1) + "\n")
    _check_round_trip(ModelTokenizer.from_file(out_dir / "tokenizer.json"))
    return out_dir


def _check_round_trip(tok: ModelTokenizer) -> None:
    samples = [ex.prefix for ex in KNOWN_EXAMPLES] + [ex.middle for ex in KNOWN_EXAMPLES]
    samples += ["    return x\n", " x = 1", "naïve → ☺ 💡\n\tdone"]
    for text in samples:
        if tok.decode_infilling(tok.encode_infilling(text)) != text:
            raise RuntimeError(f"tokenizer does not round-trip {text!r}")
        if tok.decode_infilling(tok.encode(text)) != " " + text:
            raise RuntimeError(f"tokenizer encode() does not round-trip {text!r}")


# -- cache ---------------------------------------------------------------------------------


def _cache_root(cache_root: Path | None) -> Path:
    if cache_root is None:
        env = os.environ.get(CACHE_ENV)
        cache_root = Path(env) if env else Path.home() / ".cache" / "code-llama-ls" / "test-models"
    root = Path(cache_root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _publish(final: Path, build: Any) -> Path:
    """Run ``build(tmp_dir)`` and move the result to ``final`` atomically, unless already there."""
    if (final / MARKER).is_file():
        return final
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        build(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache may be shared
        try:
            os.replace(tmp, final)
        except OSError:
            if (final / MARKER).is_file():  # another process won the race
                return final
            shutil.rmtree(final, ignore_errors=True)  # a stale, incomplete folder
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _tokenizer_source(cache_root: Path, tokenizer_dir: Path | None) -> Path:
    """Where the tokenizer files come from: explicit, the fixture, or a cached fallback."""
    if tokenizer_dir is not None:
        return Path(tokenizer_dir)
    fixture = fixture_tokenizer_dir()
    if fixture is not None:
        return fixture
    corpus_hash = hashlib.sha256("\0".join(_fallback_corpus()).encode()).hexdigest()
    key = _digest({
        "kind": "fallback-tokenizer", "format": FORMAT_VERSION, "vocab": _FALLBACK_VOCAB,
        "split": _TRAIN_SPLIT, "corpus": corpus_hash,
    })

    def build(tmp: Path) -> None:
        build_fallback_tokenizer(tmp)
        (tmp / MARKER).write_text(json.dumps({"kind": "fallback-tokenizer", "key": key}) + "\n")

    return _publish(cache_root / f"fallback-tokenizer-{key}", build)


def _copy_tokenizer(src: Path, dst: Path) -> None:
    for name in _TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)


# -- models --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    hidden_size: int
    layers: int
    heads: int
    intermediate: int


def _llama(shape: _Shape, tok: ModelTokenizer, seed: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=tok.vocab_size,
        hidden_size=shape.hidden_size,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.heads,
        intermediate_size=shape.intermediate,
        max_position_embeddings=16384,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},  # Code Llama's θ
        bos_token_id=tok.special.bos,
        eos_token_id=tok.special.eos,
        pad_token_id=None,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).float()


def _model_folder(kind: str, cache_root: Path | None, tokenizer_dir: Path | None, spec: dict, train) -> Path:
    root = _cache_root(cache_root)
    tok_src = _tokenizer_source(root, tokenizer_dir)
    key = _digest({
        "kind": kind, "format": FORMAT_VERSION, "spec": spec,
        "tokenizer": _file_digest(tok_src / "tokenizer.json"),
    })

    def build(tmp: Path) -> None:
        started = time.perf_counter()
        tok = ModelTokenizer.from_file(tok_src / "tokenizer.json")
        model, info = train(tok)
        model.save_pretrained(tmp)  # safetensors
        _copy_tokenizer(tok_src, tmp)
        meta = {
            "kind": kind, "key": key, "spec": spec, "tokenizer_source": str(tok_src),
            "parameters": sum(p.numel() for p in model.parameters()),
            "build_seconds": round(time.perf_counter() - started, 2), **info,
        }
        (tmp / MARKER).write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")

    return _publish(root / f"{kind}-{key}", build)


def random_model(
    cache_root: Path | None = None,
    *,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    intermediate: int = 128,
    tokenizer_dir: Path | None = None,
) -> Path:
    """A Llama with random weights (timing and shapes only); returns its folder."""
    shape = _Shape(hidden_size, layers, heads, intermediate)
    seed = 0
    spec = {"shape": asdict(shape), "seed": seed}
    return _model_folder("random", cache_root, tokenizer_dir, spec, lambda tok: (_llama(shape, tok, seed), {}))


def mid_model(cache_root: Path | None = None, *, tokenizer_dir: Path | None = None) -> Path:
    """A mid-sized random Llama for benchmarks: hidden 512, 6 layers, 8 heads, MLP 1376.

    About 19M parameters in the layers plus 2 x vocab x 512 in the (untied) embeddings and
    head: ~52M on the 32,016-token vocabulary, ~23M on the fallback one. float32 on disk.
    """
    return random_model(
        cache_root, hidden_size=512, layers=6, heads=8, intermediate=1376, tokenizer_dir=tokenizer_dir
    )


# Training settings of the trained model.
_TRAINED_SHAPE = _Shape(hidden_size=64, layers=2, heads=4, intermediate=128)
# Trains until greedy decoding reproduces every example and the smallest top-1/top-2 logit
# margin over all target steps reaches "margin" (so float rounding cannot flip a choice),
# checking after "steps" and then every "extra_steps", up to "max_steps".
_TRAIN = {"seed": 1234, "lr": 5e-3, "steps": 150, "extra_steps": 50, "max_steps": 1500, "margin": 5.0}


def trained_model(cache_root: Path | None = None, *, tokenizer_dir: Path | None = None) -> Path:
    """A 2-layer, 64-wide Llama that reproduces :data:`KNOWN_EXAMPLES` greedily (PSM and SPM)."""
    spec = {
        "shape": asdict(_TRAINED_SHAPE), "train": _TRAIN,
        "examples": [asdict(ex) for ex in KNOWN_EXAMPLES],
        "instruct": [asdict(ex) for ex in INSTRUCT_EXAMPLES],
    }
    return _model_folder("trained", cache_root, tokenizer_dir, spec, _train_single_thread)


def _training_rows(tok: ModelTokenizer) -> list[tuple[list[int], list[int]]]:
    rows = []
    for ex in KNOWN_EXAMPLES:
        target = tok.encode_infilling(ex.middle) + [tok.special.eot]
        for mode in ("psm", "spm"):
            rows.append((assemble(tok, ex.prefix, ex.suffix, mode), target))
    for inst in INSTRUCT_EXAMPLES:  # after [/INST] the answer follows as " answer" (enc), then </s>
        rows.append((instruct_prompt_ids(tok, inst), tok.encode(inst.answer) + [tok.special.eos]))
    return rows


def _row_names() -> list[str]:
    return [f"{mode} {ex.middle!r}" for ex in KNOWN_EXAMPLES for mode in ("psm", "spm")] + \
        [f"instruct {ex.kind}" for ex in INSTRUCT_EXAMPLES]


def _train_single_thread(tok: ModelTokenizer):
    # The tensors are tiny: one thread is as fast on an idle machine and several times faster
    # on a busy one (2 threads went from 7 s to 40 s per 100 steps beside other test runs).
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.enable_grad():  # whatever grad mode the calling thread was left in
            return _train(tok)
    finally:
        torch.set_num_threads(threads)


def _train(tok: ModelTokenizer):
    import torch
    import torch.nn.functional as F

    model = _llama(_TRAINED_SHAPE, tok, _TRAIN["seed"])
    rows = _training_rows(tok)
    width = max(len(p) + len(t) for p, t in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    predict_at: list[tuple[int, int]] = []  # (row, position whose logits predict a target token)
    labels: list[int] = []
    for r, (prompt, target) in enumerate(rows):
        seq = prompt + target
        ids[r, : len(seq)] = torch.tensor(seq)
        mask[r, : len(seq)] = 1
        for j, token in enumerate(target):
            predict_at.append((r, len(prompt) + j - 1))
            labels.append(token)
    rows_idx = torch.tensor([r for r, _ in predict_at])
    pos_idx = torch.tensor([p for _, p in predict_at])
    label_t = torch.tensor(labels)

    def target_logits() -> torch.Tensor:
        # The head only where a target is predicted: far cheaper than logits at every position.
        hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
        return model.lm_head(hidden[rows_idx, pos_idx])

    def min_margin() -> float:
        with torch.no_grad():
            logits = target_logits()
        gold = logits.gather(1, label_t[:, None]).squeeze(1)
        others = logits.scatter(1, label_t[:, None], float("-inf")).max(dim=1).values
        return float((gold - others).min())

    try:  # the fused CPU kernel is ~10x faster than the per-tensor loop on this model
        optim = torch.optim.AdamW(model.parameters(), lr=_TRAIN["lr"], fused=True)
    except (RuntimeError, TypeError):
        optim = torch.optim.AdamW(model.parameters(), lr=_TRAIN["lr"])
    model.train()
    steps, budget = 0, _TRAIN["steps"]
    failures: list[str] = []
    margin = float("-inf")
    while True:
        while steps < budget:
            loss = F.cross_entropy(target_logits(), label_t)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            steps += 1
        model.eval()
        margin = min_margin()
        failures = _verify(model, tok) if margin >= _TRAIN["margin"] else ["margin"]
        if not failures:
            break
        if steps >= _TRAIN["max_steps"]:
            raise RuntimeError(
                f"the tiny model did not memorise the known examples after {steps} steps "
                f"(smallest top-1/top-2 logit margin {margin:.2f}, need {_TRAIN['margin']}); "
                f"failing: {failures}"
            )
        model.train()
        budget = min(steps + _TRAIN["extra_steps"], _TRAIN["max_steps"])
    return model, {"train_steps": steps, "final_loss": round(loss.item(), 6), "min_margin": round(margin, 2)}


def _verify(model, tok: ModelTokenizer) -> list[str]:
    """Greedy-decode every example (PSM and SPM) with a KV cache; list those that differ."""
    failures = []
    for (prompt, target), name in zip(_training_rows(tok), _row_names()):
        got = _greedy(model, prompt, tok.stop_ids(), 64)
        if got != target:
            failures.append(f"{name}: got {tok.decode_infilling(got)!r}")
    return failures


# -- greedy decoding -------------------------------------------------------------------------


def _greedy(model, prompt_ids: list[int], stop_ids: frozenset[int], max_new_tokens: int) -> list[int]:
    import torch
    from transformers import DynamicCache

    params = inspect.signature(model.forward).parameters
    cache_kw = "cache" if "cache" in params else "past_key_values"  # transformers ≥ 5.2x vs older 5.x
    cache = DynamicCache(config=model.config)
    out_ids: list[int] = []
    step_ids = torch.tensor([prompt_ids], dtype=torch.long)
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(input_ids=step_ids, use_cache=True, logits_to_keep=1, **{cache_kw: cache}).logits
            token = int(logits[0, -1].argmax())
            out_ids.append(token)
            if token in stop_ids:
                break
            step_ids = torch.tensor([[token]], dtype=torch.long)
    return out_ids


@lru_cache(maxsize=4)
def _load(model_dir: str, stamp: float):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True, dtype="float32")
    model.eval()
    tok = ModelTokenizer.from_file(Path(model_dir) / "tokenizer.json")
    return model, tok.stop_ids()


def greedy_complete(model_dir: Path, prompt_ids: list[int], max_new_tokens: int = 64) -> list[int]:
    """Greedy (argmax) completion of ``prompt_ids``; includes the stop token (▁<EOT> or </s>)."""
    model_dir = Path(model_dir).resolve()
    stamp = (model_dir / "config.json").stat().st_mtime
    model, stop_ids = _load(str(model_dir), stamp)
    return _greedy(model, list(prompt_ids), stop_ids, max_new_tokens)


if __name__ == "__main__":  # python -m benchmarks.tiny_model [trained|random|mid]
    kinds = sys.argv[1:] or ["trained"]
    builders = {"trained": trained_model, "random": random_model, "mid": mid_model}
    for kind in kinds:
        t0 = time.perf_counter()
        folder = builders[kind]()
        print(f"{kind}: {folder} ({time.perf_counter() - t0:.1f} s)")
