"""The locally built test models: the trained one reproduces its known infilling examples.

Models are cached under $CODE_LLAMA_LS_TEST_CACHE (default ~/.cache/code-llama-ls/test-models),
so only the first session pays for training.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pytest

from benchmarks.tiny_model import (
    KNOWN_EXAMPLES,
    MARKER,
    build_fallback_tokenizer,
    fixture_tokenizer_dir,
    greedy_complete,
    random_model,
    trained_model,
)
from code_llama_ls.prompts.fim import assemble
from code_llama_ls.prompts.tokenization import ModelTokenizer

CASES = [pytest.param(ex, mode, id=f"{i}-{mode}") for i, ex in enumerate(KNOWN_EXAMPLES) for mode in ("psm", "spm")]


@pytest.fixture(scope="session")
def trained_dir() -> Path:
    return trained_model()


@pytest.fixture(scope="session")
def fallback_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fallback_tokenizer(tmp_path_factory.mktemp("fallback-tokenizer"))


@pytest.fixture(scope="session")
def trained_fallback_dir(fallback_dir: Path) -> Path:
    return trained_model(tokenizer_dir=fallback_dir)


@lru_cache(maxsize=None)
def _tokenizer(model_dir: Path) -> ModelTokenizer:
    return ModelTokenizer.from_pretrained(str(model_dir), local_files_only=True)


def _check_reproduces(model_dir: Path, example, mode: str) -> None:
    tok = _tokenizer(model_dir)
    prompt = assemble(tok, example.prefix, example.suffix, mode)
    got = greedy_complete(model_dir, prompt)
    assert got == tok.encode_infilling(example.middle) + [tok.special.eot]
    assert tok.decode_infilling(got[:-1]) == example.middle


@pytest.mark.parametrize(("example", "mode"), CASES)
def test_trained_model_reproduces_known_examples(trained_dir: Path, example, mode: str) -> None:
    _check_reproduces(trained_dir, example, mode)


@pytest.mark.parametrize(("example", "mode"), CASES)
def test_trained_model_on_fallback_tokenizer(trained_fallback_dir: Path, example, mode: str) -> None:
    _check_reproduces(trained_fallback_dir, example, mode)


def test_trained_model_survives_half_precision(trained_dir: Path) -> None:
    """The logit margins are wide enough that bfloat16 weights give the same greedy output."""
    import torch
    from transformers import AutoModelForCausalLM

    from benchmarks.tiny_model import _greedy

    tok = _tokenizer(trained_dir)
    model = AutoModelForCausalLM.from_pretrained(str(trained_dir), local_files_only=True, dtype=torch.bfloat16)
    for example in KNOWN_EXAMPLES:
        for mode in ("psm", "spm"):
            prompt = assemble(tok, example.prefix, example.suffix, mode)
            got = _greedy(model.eval(), prompt, tok.stop_ids(), 64)
            assert got == tok.encode_infilling(example.middle) + [tok.special.eot], (mode, example)


def test_known_examples_cover_the_required_cases() -> None:
    assert KNOWN_EXAMPLES[0].prefix == "def add(a, b):\n    "
    assert KNOWN_EXAMPLES[0].suffix == "\n"
    assert KNOWN_EXAMPLES[0].middle == "return a + b"
    assert any("\n" in ex.middle for ex in KNOWN_EXAMPLES)  # multi-line completion
    assert any(ex.middle.startswith(" ") for ex in KNOWN_EXAMPLES)  # leading space kept
    assert any(not ex.prefix.endswith((" ", "\n")) for ex in KNOWN_EXAMPLES)  # mid-line


def test_trained_model_folder_loads_with_auto_classes(trained_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf_tok = AutoTokenizer.from_pretrained(str(trained_dir), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(trained_dir), local_files_only=True)
    tok = ModelTokenizer.from_file(trained_dir / "tokenizer.json")
    config = model.config
    assert config.model_type == "llama"
    assert (config.hidden_size, config.num_hidden_layers) == (64, 2)
    assert config.vocab_size == tok.vocab_size
    assert config.pad_token_id is None and config.tie_word_embeddings is False
    assert (config.bos_token_id, config.eos_token_id) == (hf_tok.bos_token_id, hf_tok.eos_token_id)
    assert config.max_position_embeddings == 16384
    assert (trained_dir / "model.safetensors").is_file()
    meta = json.loads((trained_dir / MARKER).read_text())
    assert meta["min_margin"] >= 5


def test_trained_model_uses_the_code_llama_vocabulary(trained_dir: Path) -> None:
    if fixture_tokenizer_dir() is None:
        pytest.skip("../shared/fixtures/codellama-tokenizer is absent: the model uses the fallback tokenizer")
    tok = ModelTokenizer.from_pretrained(str(trained_dir), local_files_only=True)
    s = tok.special
    assert (s.prefix, s.suffix, s.middle, s.eot) == (32007, 32008, 32009, 32010)
    assert ModelTokenizer.from_file(trained_dir / "tokenizer.json").vocab_size == 32016


def test_cached_model_is_reused(trained_dir: Path) -> None:
    assert trained_model() == trained_dir


def test_random_model_loads_and_generates() -> None:
    import torch
    from transformers import AutoModelForCausalLM

    folder = random_model(hidden_size=32, layers=1, heads=2, intermediate=64)
    tok = ModelTokenizer.from_pretrained(str(folder), local_files_only=True)
    prompt = assemble(tok, "def f(x):\n    ", "\n", "psm")
    got = greedy_complete(folder, prompt, max_new_tokens=8)
    assert 1 <= len(got) <= 8 and all(0 <= t < tok.vocab_size for t in got)

    # transformers' own generate works too (attention mask given: pad is unset).
    model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True)
    ids = torch.tensor([prompt])
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False)
    assert out.shape[1] <= len(prompt) + 4


def test_fallback_tokenizer(fallback_dir: Path) -> None:
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    tok = ModelTokenizer.from_pretrained(str(fallback_dir), local_files_only=True)
    raw = Tokenizer.from_file(str(fallback_dir / "tokenizer.json"))
    s = tok.special
    infill = [s.prefix, s.suffix, s.middle, s.eot]
    assert [raw.id_to_token(i) for i in infill] == ["▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"]
    assert (s.bos, s.eos) == (1, 2) and raw.id_to_token(0) == "<unk>"
    assert [raw.token_to_id(f"<0x{b:02X}>") for b in (0, 10, 255)] == [3, 13, 258]
    assert 3500 <= raw.get_vocab_size() <= 4100

    texts = [ex.prefix + ex.middle + ex.suffix for ex in KNOWN_EXAMPLES]
    texts += ["    return x\n", " x = 1", "naïve → ☺ 💡\n\tdone", "text with <EOT> and <s> inside"]
    for text in texts:
        ids = tok.encode_infilling(text)
        assert tok.decode_infilling(ids) == text
        assert tok.decode_infilling(tok.encode(text)) == " " + text
    # Document text never becomes control tokens (a literal "▁" decodes as a space, as in Llama).
    ids = tok.encode_infilling("x = '▁<EOT>' + '<s>' + '</s>'")
    assert not set(ids) & {*infill, s.bos, s.eos}
    # Llama-like pieces: indentation is a run of spaces, then the word with its space.
    assert [raw.id_to_token(i) for i in tok.encode_infilling("    return")] == ["▁▁▁", "▁return"]

    hf = AutoTokenizer.from_pretrained(str(fallback_dir), local_files_only=True)
    assert hf("x = 1").input_ids[0] == s.bos
