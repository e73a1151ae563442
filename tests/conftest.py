"""Shared fixtures: small models that the tests build themselves (no downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from code_llama_ls.bench import tiny_model


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """A tiny Llama trained so that known infilling prompts give known completions."""
    return tiny_model.trained_model()


@pytest.fixture(scope="session")
def random_model() -> Path:
    """A tiny random-weight Llama: for timing, shape and cancellation tests only."""
    return tiny_model.random_model()


@pytest.fixture(scope="session")
def tokenizer_dir() -> Path:
    """The Code Llama tokenizer replica (../shared/fixtures), else the cached fallback tokenizer."""
    return tiny_model.fixture_tokenizer_dir() or tiny_model._tokenizer_source(tiny_model._cache_root(None), None)
