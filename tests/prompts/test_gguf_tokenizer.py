"""Code Llama's tokenizer read from a GGUF file gives the ids of Meta's reference.

transformers converts a GGUF's vocabulary into a tokenizer that encodes without SentencePiece's
dummy prefix (a plain ``encode`` of ``"    return x"`` differs; shown below); our encodings are
built from the sentinel trick on any SentencePiece-style vocabulary, so the same exactness cases
as ``test_fim_exactness.py`` must come out identical. The GGUF is the trained tiny model converted
by llama.cpp's own ``convert_hf_to_gguf.py`` with the replica's ``tokenizer.model`` (real scores).
"""

from __future__ import annotations

import os

import pytest
from meta_reference import exactness_cases, meta_reference, require_fixture

from code_llama_ls.prompts.fim import Budget, build_infill_prompt
from code_llama_ls.prompts.tokenization import ModelTokenizer


@pytest.fixture(scope="module")
def ref():
    return meta_reference(str(require_fixture()))


@pytest.fixture(scope="module")
def gguf(trained_model, ref):
    from benchmarks import llama_cpp

    try:
        return llama_cpp.tiny_model_gguf(trained_model)
    except RuntimeError as exc:  # no sdist (no network), converter failure
        if os.environ.get("CI"):
            pytest.fail(f"cannot convert the tiny model to GGUF: {exc}")
        pytest.skip(f"cannot convert the tiny model to GGUF: {exc}")


@pytest.fixture(scope="module")
def tok(gguf) -> ModelTokenizer:
    return ModelTokenizer.from_pretrained(str(gguf))


def test_the_gguf_tokenizer_has_code_llama_rules(tok, ref):
    s = tok.special
    assert tok.sentencepiece and s.fim and s.fim_format == "codellama"
    assert (s.bos, s.prefix, s.suffix, s.middle, s.eot) == (ref.bos, ref.prefix_id, ref.suffix_id, ref.middle_id,
                                                            ref.eot_id)


def test_prompts_from_the_gguf_tokenizer_equal_meta_reference(tok, ref):
    cases = exactness_cases(bases=60)
    mismatches = []
    for case in cases:
        budget = Budget(case.max_context_tokens, case.max_new_tokens, case.prefix_ratio)
        prompt = build_infill_prompt(tok, case.before, case.after, budget, case.mode)
        if prompt.ids != ref.prompt(prompt.prefix, prompt.suffix, case.mode):
            mismatches.append(case.name)
    assert len(cases) >= 200
    assert not mismatches, f"{len(mismatches)}/{len(cases)} prompts differ from Meta's: {mismatches[:10]}"


def test_a_plain_encode_of_the_converted_tokenizer_is_not_the_reference(gguf, tok, ref):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    text = "    return x"
    assert hf.encode(text, add_special_tokens=False) != ref.enc(text)
    assert tok.encode(text) == ref.enc(text)
