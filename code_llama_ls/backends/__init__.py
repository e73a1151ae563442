"""Backends behind one protocol (``base.Backend``), built from settings by ``create_backend``."""

from __future__ import annotations

from code_llama_ls.backends.base import Backend, BackendError
from code_llama_ls.prompts.tokenization import InfillTokenizer
from code_llama_ls.settings import Settings


def create_backend(settings: Settings, tokenizer: InfillTokenizer) -> Backend:
    if settings.backend == "transformers":
        from code_llama_ls.backends.transformers_backend import TransformersBackend

        return TransformersBackend(
            settings.model,
            tokenizer,
            device=settings.device,
            dtype=settings.dtype,
            local_files_only=settings.local_files_only,
        )
    raise BackendError(f"unknown backend {settings.backend!r}")
