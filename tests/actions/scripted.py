"""A scripted backend (deterministic text, Backend protocol) and a runtime around it, for tests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from code_llama_ls.backends.base import BackendError, BackendStatus, CancelToken, Chunk, GenerationRequest
from benchmarks import tiny_model
from code_llama_ls.runtime.manager import Runtime
from code_llama_ls.prompts.tokenization import ModelTokenizer


class ScriptedBackend:
    """Streams ``answer`` in small chunks; records the requests; can fail or wait to be cancelled."""

    name = "scripted"
    supports_healing = True

    def __init__(self, answer: str = "", *, fail: str | None = None, chunk: int = 4, delay: float = 0.0) -> None:
        self.answer, self.fail, self.chunk, self.delay = answer, fail, chunk, delay
        self.requests: list[GenerationRequest] = []

    @property
    def device_type(self) -> str:
        return "cpu"

    def status(self) -> BackendStatus:
        return BackendStatus("ready", "scripted")

    async def load(self, progress) -> None:
        return None

    async def stream(self, request: GenerationRequest, cancel: CancelToken):
        self.requests.append(request)
        if self.fail:
            raise BackendError(self.fail)
        n = 0
        for i in range(0, len(self.answer), self.chunk):
            if cancel.cancelled:
                yield Chunk("", n, "cancelled")
                return
            n += 1
            yield Chunk(self.answer[i:i + self.chunk], n)
            await asyncio.sleep(self.delay)
        yield Chunk("", n, "eot")

    async def close(self) -> None:
        return None


def tokenizer_dir() -> Path:
    return tiny_model.fixture_tokenizer_dir() or tiny_model._tokenizer_source(tiny_model._cache_root(None), None)


def scripted_runtime(backend: ScriptedBackend) -> Runtime:
    return Runtime(ModelTokenizer.from_file(tokenizer_dir() / "tokenizer.json"), backend)
