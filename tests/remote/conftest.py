"""Real inference servers on loopback for the remote-backend tests: llama.cpp's ``llama-server``
(built once from the llama-cpp-python sdist and cached), llama-cpp-python's ``llama_cpp.server``
on the same build, and ``code-llama-ls model-server``, all serving the trained tiny model.

A missing prerequisite (no C++ toolchain, no network for the first sdist download) skips a test
with the reason, except under ``CI``, where it fails.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
import pytest
from remote_servers import free_port, require, serving

from benchmarks import llama_cpp


@pytest.fixture(scope="session")
def llama_server(llama_server_binary, tiny_gguf, tmp_path_factory) -> Iterator[str]:
    """``llama-server`` on 127.0.0.1 and a free port serving the tiny GGUF; its base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "llama-server.log"
    with serving(llama_cpp.llama_server_command(tiny_gguf, port), port, log) as url:
        yield url


@pytest.fixture(scope="session")
def llama_cpp_python_server(llama_server_binary, tiny_gguf, tmp_path_factory) -> Iterator[str]:
    """llama-cpp-python's ``python -m llama_cpp.server``: its Python package from the same sdist on
    the shared libraries of the llama-server build (one C++ build serves both); its base URL."""
    missing = [name for name in ("fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings",
                                 "diskcache", "jinja2", "yaml") if importlib.util.find_spec(name) is None]
    require(not missing, f"llama_cpp.server needs {', '.join(missing)} (the dev extra installs them)")
    port = free_port()
    log = tmp_path_factory.mktemp("llama-cpp-python") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(tiny_gguf), "--host", "127.0.0.1",
               "--port", str(port)]
    with serving(command, port, log, env=llama_cpp.python_server_env(), path="/v1/models") as url:
        yield url
