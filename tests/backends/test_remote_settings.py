"""Settings for the remote backends, and the factory that builds them."""

from __future__ import annotations

import pytest

from code_llama_ls.backends import create_backend
from code_llama_ls.backends.llamacpp_backend import LlamaCppBackend
from code_llama_ls.backends.ollama_backend import OllamaBackend
from code_llama_ls.backends.openai_backend import OpenAICompletionsBackend
from code_llama_ls.runtime.manager import runtime_key
from code_llama_ls.settings import GPU_CONTEXT_TOKENS, Settings, merge_settings


def test_defaults_and_wire_names():
    settings = Settings.model_validate({"backend": "openai", "url": "unix:///run/m.sock", "apiKeyEnv": "K",
                                        "promptFormat": "text", "instructEndpoint": "chat",
                                        "requestTimeoutS": 2.5, "maxRetries": 0, "caCertPath": "/ca.pem"})
    assert settings.remote and settings.prompt_format == "text" and settings.instruct_endpoint == "chat"
    assert settings.request_timeout_s == 2.5 and settings.max_retries == 0 and settings.ca_cert_path == "/ca.pem"
    plain = Settings()
    assert not plain.remote and plain.prompt_format == "auto" and plain.instruct_endpoint == "completions"
    assert plain.request_timeout_s == 30.0 and plain.max_retries == 2 and plain.ca_cert_path is None


@pytest.mark.parametrize("key, value", [("backend", "vllm"), ("promptFormat", "ids"), ("requestTimeoutS", 0),
                                        ("maxRetries", -1), ("instructEndpoint", "messages")])
def test_bad_values_keep_the_previous_value(key, value):
    merged, warnings = merge_settings(Settings(), {key: value})
    assert len(warnings) == 1 and f"codeLlama.{key}" in warnings[0]
    assert merged == Settings()


@pytest.mark.parametrize("name, cls", [("openai", OpenAICompletionsBackend), ("ollama", OllamaBackend),
                                       ("llamacpp", LlamaCppBackend)])
def test_factory(name, cls, tokenizer):
    backend = create_backend(Settings(backend=name, url="http://127.0.0.1:1", model="m", request_timeout_s=3),
                             tokenizer)
    assert type(backend) is cls and backend.name == name
    assert backend.device_type == "remote" and backend.options.timeout_s == 3
    assert Settings().context_tokens_for(backend.device_type) == GPU_CONTEXT_TOKENS


def test_changing_a_remote_setting_reconnects():
    base = Settings(backend="openai", url="http://127.0.0.1:1")
    for change in ({"url": "http://127.0.0.1:2"}, {"prompt_format": "text"}, {"api_key_env": "K"},
                   {"ca_cert_path": "/ca.pem"}, {"request_timeout_s": 5.0}):
        assert runtime_key(base) != runtime_key(base.model_copy(update=change)), change
    assert runtime_key(base) == runtime_key(base.model_copy(update={"max_new_tokens": 7}))


def test_cli_budget_for_a_remote_backend():
    from code_llama_ls.cli.complete import _device_type

    assert _device_type(Settings(backend="openai", url="http://x")) == "remote"
