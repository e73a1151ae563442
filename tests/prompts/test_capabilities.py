"""Which models infill, which chat format they speak, their context length: by name, by config
fields, by tokenizer, and by the ``infilling`` setting."""

from __future__ import annotations

import pytest

from code_llama_ls.prompts.capabilities import KNOWN_CHECKPOINTS, detect
from code_llama_ls.prompts.tokenization import ModelTokenizer, TokenizerError


@pytest.fixture(scope="module")
def code_llama(tokenizer_dir) -> ModelTokenizer:
    return ModelTokenizer.from_file(tokenizer_dir / "tokenizer.json")


@pytest.mark.parametrize("name, infills", [
    ("codellama/CodeLlama-7b-hf", True),
    ("codellama/CodeLlama-13b-Instruct-hf", True),
    ("/models/TheBloke/codellama-7b-instruct.Q4_K_M.gguf", True),
    ("codellama/CodeLlama-34b-hf", False),
    ("codellama/CodeLlama-34b-Instruct-hf", False),
    ("codellama/CodeLlama-7b-Python-hf", False),
    ("codellama/CodeLlama-13b-Python-hf", False),
    ("codellama/CodeLlama-70b-hf", False),
    ("/models/codellama-70b-instruct.Q4_K_M.gguf", False),
    ("codellama:7b-code", True),  # Ollama's tags
    ("codellama:34b", False),
    ("codellama:7b-python", False),
    ("codellama:70b-code", False),
    ("my-company/fine-tuned-model", True),  # no rule matches: the tokenizer's FIM tokens decide
])
def test_known_checkpoints_by_name_whatever_the_tokenizer_carries(code_llama, name, infills):
    found = detect(name, {}, code_llama)
    assert found.infilling is infills, found.why
    assert found.chat_format == "llama2"


def test_the_name_in_the_config_counts_too(code_llama):
    assert not detect("/models/local", {"_name_or_path": "codellama/CodeLlama-34b-hf"}, code_llama).infilling


@pytest.mark.parametrize("config, why", [
    ({"rope_theta": 1e6, "hidden_size": 8192, "num_hidden_layers": 48}, "34B"),
    ({"rope_theta": 1e6, "hidden_size": 8192, "num_hidden_layers": 80}, "70B"),
    ({"rope_theta": 1e6, "vocab_size": 32000, "hidden_size": 4096, "num_hidden_layers": 32}, "32000 embeddings"),
])
def test_config_fields_mark_non_infilling_code_llama(code_llama, config, why):
    found = detect("/models/unnamed", config, code_llama)
    assert not found.infilling and why in found.why


def test_config_fields_of_other_models_do_not(code_llama):
    # Llama 2's rope_theta is 10,000: its shape says nothing about Code Llama.
    assert detect("/models/unnamed", {"rope_theta": 1e4, "hidden_size": 8192, "num_hidden_layers": 80},
                  code_llama).infilling
    assert detect("/models/unnamed", {"rope_theta": 1e6, "vocab_size": 32016, "hidden_size": 4096,
                                      "num_hidden_layers": 32}, code_llama).infilling


def test_the_setting_overrides_detection(code_llama):
    assert detect("codellama/CodeLlama-34b-hf", {}, code_llama, "on").infilling
    assert not detect("codellama/CodeLlama-7b-hf", {}, code_llama, "off").infilling
    assert detect("codellama/CodeLlama-7b-hf", {}, code_llama, "off").why == "infilling: off"


def test_context_length_comes_from_the_config(code_llama):
    found = detect("codellama/CodeLlama-7b-hf", {"max_position_embeddings": 2048}, code_llama)
    assert found.context_length == 2048
    assert found.context_tokens(4096) == 2048 and found.context_tokens(1024) == 1024
    assert detect("x", {}, code_llama).context_tokens(4096) == 4096


def test_rules_are_ordered_most_specific_first():
    # "CodeLlama-7b-Python" must meet the Python rule before the 7B one.
    assert [k.infills for k in KNOWN_CHECKPOINTS][-1] is True
    assert all(not k.infills for k in KNOWN_CHECKPOINTS[:-1])


def test_a_tokenizer_without_fim_tokens_runs_left_to_right(smollm2_tokenizer):
    found = detect("HuggingFaceTB/SmolLM2-135M-Instruct", {"max_position_embeddings": 8192}, smollm2_tokenizer)
    assert not found.infilling and found.why == "its tokenizer has no infilling tokens"
    assert found.chat_format == "template" and found.completion_mode == "left-to-right"
    with pytest.raises(TokenizerError, match="infilling tokens"):
        detect("HuggingFaceTB/SmolLM2-135M-Instruct", {}, smollm2_tokenizer, "on")
