"""Fixtures for the remote backends: the tokenizer, and loopback servers that tests script."""

from __future__ import annotations

import logging

import pytest
from loopback import LoopbackServer

from code_llama_ls.prompts.tokenization import ModelTokenizer


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir) -> ModelTokenizer:
    return ModelTokenizer.from_file(tokenizer_dir / "tokenizer.json")


@pytest.fixture
async def serve():
    """``await serve(handler, uds=None)`` starts a loopback server; all are stopped at the end."""
    started: list[LoopbackServer] = []

    async def start(handler, uds: str | None = None, port: int = 0, ssl=None) -> LoopbackServer:
        server = LoopbackServer(handler)
        await server.start(uds=uds, port=port, ssl=ssl)
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


@pytest.fixture(autouse=True)
def _forget_prompt_formats():
    """``promptFormat: auto`` remembers servers per URL; each test starts fresh."""
    from code_llama_ls.backends import openai_backend

    openai_backend._FORMATS.clear()
    yield
    openai_backend._FORMATS.clear()


@pytest.fixture
def debug_logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog
