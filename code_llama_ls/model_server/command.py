"""``code-llama-ls model-server``: the in-process model behind OpenAI's ``/v1/completions``.

One model load serves every editor window: language servers reach it with the ``openai``
backend (token-id prompts, so the model sees exactly the in-process prompt) over 127.0.0.1 or a
Unix socket. Generation is the in-process engine's (``--engine``: transformers, or llama.cpp for a
``.gguf`` file), prefix KV cache included; requests queue on its one worker thread.

Endpoints:

- ``POST /v1/completions``: ``prompt`` as token ids (or one list of them) or text (one string,
  tokenized by :func:`~code_llama_ls.model_server.openai_api.text_prompt_ids`: ``<s>`` first,
  control pieces such as ``▁<PRE>`` parsed, as vLLM's Hugging Face tokenizer does); ``max_tokens``
  (16), ``temperature`` (1.0, OpenAI's default), ``stop`` (strings), ``stop_token_ids`` (vLLM's
  extension; ``▁<EOT>`` and ``</s>`` always stop), ``stream`` with OpenAI's ``text_completion``
  chunks and ``stream_options.include_usage``. A client that disconnects cancels its generation.
- ``GET /v1/models``, ``GET /health`` (``loads``, ``requests``, ``active``, ``leases``; HTTP 503
  while the model loads).
- ``GET /lease``: a connection held open by a language server that uses this server (the shared
  model server); it answers nothing more and counts in ``leases``.

The server exits after ``--idle-timeout`` seconds with no request running and no lease held.
HTTP/1.1 by uvicorn (keep-alive; streams use chunked transfer encoding); request bodies up to
16 MiB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn

from code_llama_ls.model_server.openai_api import OpenAIApi
from code_llama_ls.options import add_settings_options, settings_from
from code_llama_ls.prompts.tokenization import ModelTokenizer

READY_LINE = "code-llama-ls model-server listening on "
"""Printed (then the URL) on stdout once the socket accepts connections."""
MODEL_OPTIONS = ("tokenizer", "device", "dtype", "local_files_only", "engine", "compile", "threads",
                 "max_context_tokens")
"""Settings that decide what the server computes (``--model`` is required here: written by hand)."""
SHUTDOWN_GRACE_S = 5
"""How long connections may take to finish once the server stops (leases and generations end at once)."""


def add_arguments(commands: Any) -> None:
    parser = commands.add_parser("model-server", help="serve the model over OpenAI's /v1/completions")
    parser.add_argument("--model", required=True, help="hub id or local folder")
    add_settings_options(parser, MODEL_OPTIONS, helps={
        "max_context_tokens": "llama.cpp engine: its context size (default: as the language server's)"})
    parser.add_argument("--served-model-name", help="the name clients send as `model` (default: --model)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (default: %(default)s)")
    parser.add_argument("--socket", type=Path, help="listen on this Unix socket instead of host:port")
    parser.add_argument("--idle-timeout", type=float, default=600.0,
                        help="exit after this many seconds without requests or leases; 0: never (default: %(default)s)")


class UvicornServer(uvicorn.Server):
    """uvicorn without its signal handlers: the command's own stop the server (leases ended,
    generations cancelled, the socket file removed) and exit 0, where uvicorn would raise the
    signal again once it has stopped."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listen(args: argparse.Namespace) -> tuple[socket.socket, str]:
    """The listening socket (bound here, so that a port in use is reported as before) and its URL."""
    if args.socket is not None:
        args.socket.unlink(missing_ok=True)
        return socket.create_server(str(args.socket), family=socket.AF_UNIX), f"unix://{args.socket.resolve()}"
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    listener = socket.create_server((args.host, args.port), family=family)
    return listener, f"http://{args.host}:{listener.getsockname()[1]}"


async def serve(args: argparse.Namespace) -> int:
    from code_llama_ls.backends import create_backend
    from code_llama_ls.model_files import ModelFileError
    from code_llama_ls.prompts.tokenization import TokenizerError

    try:
        tokenizer = ModelTokenizer.from_pretrained(args.tokenizer or args.model, local_files_only=args.local_files_only)
    except (TokenizerError, ModelFileError) as exc:
        print(f"code-llama-ls model-server: {exc}", file=sys.stderr)
        return 1
    backend = create_backend(settings_from(args), tokenizer)
    api = OpenAIApi(backend, tokenizer, args.served_model_name or args.model)
    try:
        listener, url = listen(args)
    except OSError as exc:
        print(f"code-llama-ls model-server: cannot listen: {exc}", file=sys.stderr)
        return 1
    inode = args.socket.stat().st_ino if args.socket is not None else None
    server = UvicornServer(uvicorn.Config(api, lifespan="off", ws="none", log_config=None, log_level="warning",
                                          access_log=False, timeout_graceful_shutdown=SHUTDOWN_GRACE_S))
    api.start_loading()
    print(READY_LINE + url, flush=True)

    def stop() -> None:
        api.close()
        server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    idle = asyncio.ensure_future(api.wait_idle(args.idle_timeout)) if args.idle_timeout > 0 else None
    if idle is not None:
        idle.add_done_callback(lambda task: task.cancelled() or stop())
    await server.serve(sockets=[listener])
    if idle is not None:
        idle.cancel()
    with contextlib.suppress(OSError):
        if args.socket is not None and args.socket.stat().st_ino == inode:
            args.socket.unlink()  # unless a newer server has bound the path meanwhile
    await backend.close()
    return 0


def main(args: argparse.Namespace) -> int:
    return asyncio.run(serve(args))
