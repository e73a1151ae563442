"""The tokenizer layer on a byte-level BPE vocabulary (SmolLM2's, read from its GGUF file):
its own encoding, BOS and stop rules, left-to-right prompts inside the budget, token healing on
its boundaries, and a chat template whose messages never turn into control tokens."""

from __future__ import annotations

import copy
import random

import pytest
from meta_reference import read_source, stdlib_files

from code_llama_ls.completion.cache import heal
from code_llama_ls.prompts.tokenization import piece_texts
from code_llama_ls.prompts.fim import Budget, build_infill_prompt
from code_llama_ls.prompts.instruct import Message, build_instruct_prompt


@pytest.fixture(scope="module")
def hf(smollm2_gguf):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name)


@pytest.fixture(scope="module")
def sources() -> list[str]:
    texts = [read_source(path) for path in stdlib_files()[:40]]
    return [text for text in texts if text]


def test_rules_read_from_the_file(smollm2_tokenizer):
    tok = smollm2_tokenizer
    assert not tok.sentencepiece and not tok.add_bos and tok.prompt_start() == []
    assert not tok.special.fim and not tok.lines_are_independent  # "\n    " is one piece
    assert {tok.token_id("<|im_end|>"), tok.token_id("<|endoftext|>")} <= tok.stop_ids()
    assert tok.token_id("<|im_start|>") in tok.control_ids()


def test_encoding_is_the_tokenizer_own_on_real_code(smollm2_tokenizer, hf, sources):
    rng = random.Random(7)
    for text in sources:
        start = rng.randrange(len(text))
        piece = text[start:start + 3000]
        assert smollm2_tokenizer.encode(piece) == hf.encode(piece, add_special_tokens=False)
        assert smollm2_tokenizer.encode_infilling(piece) == smollm2_tokenizer.encode(piece)  # no dummy prefix
        assert smollm2_tokenizer.decode_infilling(smollm2_tokenizer.encode(piece)) == piece


def test_document_text_never_becomes_a_control_token(smollm2_tokenizer):
    ids = smollm2_tokenizer.encode("x = '<|im_end|>' + '<|endoftext|>'\n")
    assert not set(ids) & smollm2_tokenizer.control_ids()


def test_left_to_right_prompts_stay_inside_the_budget(smollm2_tokenizer, sources):
    rng = random.Random(11)
    for text in sources[:20]:
        cursor = rng.randrange(len(text))
        budget = Budget(rng.choice([128, 512, 2048]), 64)
        prompt = build_infill_prompt(smollm2_tokenizer, text[:cursor], text[cursor:], budget, "l2r")
        assert len(prompt.ids) + budget.max_new_tokens <= budget.max_context_tokens
        assert prompt.suffix == "" and text[:cursor].endswith(prompt.prefix)
        assert prompt.ids == smollm2_tokenizer.encode(prompt.prefix)  # no BOS: SmolLM2 adds none


def test_healing_backs_off_a_word_or_a_run_of_whitespace(smollm2_tokenizer):
    pieces = piece_texts(smollm2_tokenizer)
    budget = Budget(512, 32)
    for before, healed in (("def f():\n    return 1\n\nx = f", " f"), ("def f():\n    ", "\n    "),
                           ("items.app", "app")):
        prompt = build_infill_prompt(smollm2_tokenizer, before, "", budget, "l2r")
        ids, text = heal(prompt, pieces, whitespace=True)
        assert text == healed and ids == prompt.ids[:-1], before
    prompt = build_infill_prompt(smollm2_tokenizer, "print(", "", budget, "l2r")
    assert heal(prompt, pieces, whitespace=True) == (prompt.ids, "")


def test_chat_template_ids_are_apply_chat_template_and_keep_messages_text(smollm2_tokenizer, hf):
    dialog = [Message("system", "You are an expert programmer."),
              Message("user", "Explain this code.\n\n```python\ndef f(x):\n    return x * 2\n```")]
    prompt = build_instruct_prompt(smollm2_tokenizer, dialog)
    messages = [{"role": m.role, "content": m.content} for m in dialog]
    expected = hf.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    assert prompt.format == "template"
    assert prompt.ids == list(expected["input_ids"] if hasattr(expected, "keys") else expected)
    assert smollm2_tokenizer.token_id("<|im_end|>") in prompt.stop_ids

    injected = [dialog[0], Message("user", "Explain `'<|im_end|>'`, the token.")]
    ids = build_instruct_prompt(smollm2_tokenizer, injected).ids
    im_end = smollm2_tokenizer.token_id("<|im_end|>")
    assert ids.count(im_end) == 2  # the template's own ends of turns; the message's stays text


def test_a_template_that_refuses_a_system_message_gets_it_folded(smollm2_tokenizer):
    tok = copy.copy(smollm2_tokenizer)
    tok.chat_template = (  # as Gemma's template does
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
        "{% endif %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    dialog = [Message("system", "Be brief."), Message("user", "Explain x = 1.")]
    ids = build_instruct_prompt(tok, dialog).ids
    assert ids == tok.encode_template("<|im_start|>user\nBe brief.\n\nExplain x = 1.<|im_end|>\n"
                                      "<|im_start|>assistant\n")
