"""Backends behind one protocol (``base.Backend``), built from settings by ``create_backend``.

``transformers`` runs the model in-process, on transformers/torch or (``engine``) on llama.cpp; ``openai``, ``ollama`` and ``llamacpp`` talk to an
inference server over HTTP or a Unix socket (``remote.py``, ``http.py``).
"""

from __future__ import annotations

from code_llama_ls.backends.base import Backend, BackendError
from code_llama_ls.model_files import find_gguf
from code_llama_ls.prompts.tokenization import ModelTokenizer
from code_llama_ls.settings import Settings


def in_process_engine(engine: str, model: str) -> str:
    """``auto``: llama.cpp for a ``.gguf`` model where llama-cpp-python is installed, else transformers."""
    if engine != "auto":
        return engine
    from code_llama_ls.backends.llama_cpp_engine import llama_cpp_installed

    return "llama.cpp" if find_gguf(model) is not None and llama_cpp_installed() else "transformers"


def create_backend(settings: Settings, tokenizer: ModelTokenizer) -> Backend:
    if settings.backend == "transformers" and settings.shared_model_server:
        from code_llama_ls.backends.shared_model_server import SharedModelServerBackend

        return SharedModelServerBackend(settings, tokenizer)
    if settings.backend == "transformers" and in_process_engine(settings.engine, settings.model) == "llama.cpp":
        from code_llama_ls.backends.llama_cpp_engine import LlamaCppEngine

        return LlamaCppEngine(settings.model, tokenizer, device=settings.device, threads=settings.threads,
                              context_tokens=settings.max_context_tokens)
    if settings.backend == "transformers":
        from code_llama_ls.backends.transformers_backend import TransformersBackend

        return TransformersBackend(
            settings.model,
            tokenizer,
            device=settings.device,
            dtype=settings.dtype,
            local_files_only=settings.local_files_only,
            compile_mode=settings.compile,
            context_tokens=settings.max_context_tokens,
        )
    if settings.remote:
        from code_llama_ls.backends.http import RemoteOptions

        options = RemoteOptions.from_settings(settings)
        if settings.backend == "openai":
            from code_llama_ls.backends.openai_backend import OpenAICompletionsBackend

            return OpenAICompletionsBackend(options, tokenizer)
        if settings.backend == "ollama":
            from code_llama_ls.backends.ollama_backend import OllamaBackend

            return OllamaBackend(options, tokenizer)
        if settings.backend == "llamacpp":
            from code_llama_ls.backends.llamacpp_backend import LlamaCppBackend

            return LlamaCppBackend(options, tokenizer)
    raise BackendError(f"unknown backend {settings.backend!r}")
