"""``code-llama-ls bench load``: a team of editor windows against one inference server.

N language-server processes (stdio, as N editor windows would run them) use one inference server
on loopback through the ``openai`` backend: llama.cpp's ``llama-server`` (built and cached by
:mod:`benchmarks.llama_cpp`) or ``code-llama-ls model-server``, both serving the trained
tiny model. Each window asks for inline completions one after another, each on a new document
state (so no client-side cache answers), until it has made ``--requests`` or ``--duration`` has
passed. Prints p50/p95 latency per request, errors and throughput (``--json`` for one object).

Bounded: at most 16 windows, 500 requests each, 300 seconds; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.lsp_window import START_TIMEOUT_S, Window, end_of
from benchmarks.stats import p50_p95

MAX_CLIENTS = 16
MAX_REQUESTS = 500
MAX_DURATION_S = 300.0


# -- the inference server --------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_inference_server(kind: str, model_dir: Path, parallel: int, log_path: Path) -> tuple[subprocess.Popen, str]:
    """Start ``llama-server`` or ``model-server`` on 127.0.0.1; (process, base URL) once healthy."""
    import httpx

    port = _free_port()
    if kind == "llama-server":
        from benchmarks import llama_cpp

        llama_cpp.build_llama_server()
        command = llama_cpp.llama_server_command(llama_cpp.tiny_model_gguf(model_dir), port, parallel=parallel)
    else:
        command = [sys.executable, "-m", "code_llama_ls", "model-server", "--model", str(model_dir),
                   "--local-files-only", "--port", str(port)]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench load: {kind} exited with {process.returncode}:\n"
                             f"{log_path.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_process(process)
    raise SystemExit(f"bench load: {kind} did not become healthy in {START_TIMEOUT_S:g} s")


def stop_process(process: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# -- the team --------------------------------------------------------------------------------


async def _window_run(index: int, window: Window, requests: int, deadline: float, latencies: list[float],
                      errors: list[str], empty: list[int]) -> None:
    from benchmarks.tiny_model import KNOWN_EXAMPLES

    for k in range(requests):
        if time.monotonic() >= deadline:
            return
        example = KNOWN_EXAMPLES[k % len(KNOWN_EXAMPLES)]
        # A new document state each time (a comment naming the request), so every request reaches
        # the inference server rather than the language server's completion cache.
        prefix = f"# window {index} request {k}\n{example.prefix}"
        uri = f"file:///bench-load/w{index}/r{k}.py"
        window.open(uri, prefix + example.suffix)
        line, character = end_of(prefix)
        started = time.perf_counter()
        try:
            texts = await window.complete(uri, line, character)
        except Exception as exc:  # a timeout or an LSP error: the run goes on
            errors.append(f"window {index} request {k}: {type(exc).__name__}: {exc}")
            continue
        latencies.append((time.perf_counter() - started) * 1000)
        if not texts or not texts[0]:
            empty.append(k)


async def run_load(kind: str, clients: int, requests: int, duration: float, max_new_tokens: int) -> dict[str, Any]:
    from benchmarks import tiny_model

    model_dir = tiny_model.trained_model()
    with tempfile.TemporaryDirectory(prefix="code-llama-ls-load-") as tmp:
        process, url = await asyncio.to_thread(start_inference_server, kind, model_dir, clients, Path(tmp) / "server.log")
        windows: list[Window] = []
        try:
            options = {"model": str(model_dir), "localFilesOnly": True, "backend": "openai", "url": url,
                       "promptFormat": "token_ids", "contextEnabled": False, "debounceMs": 0,
                       "maxNewTokens": max_new_tokens}
            windows = [Window(options) for _ in range(clients)]
            states = await asyncio.gather(*(w.start() for w in windows))
            failed = [s.get("message", "") for s in states if s.get("state") != "ready"]
            if failed:
                raise SystemExit(f"bench load: a language server could not connect: {failed[0]}")
            latencies: list[float] = []
            errors: list[str] = []
            empty: list[int] = []
            started = time.perf_counter()
            deadline = time.monotonic() + duration
            await asyncio.gather(*(_window_run(i, w, requests, deadline, latencies, errors, empty)
                                   for i, w in enumerate(windows)))
            wall = time.perf_counter() - started
        finally:
            await asyncio.gather(*(w.stop() for w in windows), return_exceptions=True)
            await asyncio.to_thread(stop_process, process)
    return {
        "server": kind, "clients": clients, "requests": len(latencies) + len(errors), "completed": len(latencies),
        "errors": len(errors), "empty": len(empty), **p50_p95(latencies), "wall_s": round(wall, 3),
        "throughput_rps": round(len(latencies) / wall, 3) if wall > 0 else 0.0, "max_new_tokens": max_new_tokens,
        "error_samples": errors[:3],
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", choices=["llama-server", "model-server"], default="llama-server",
                        help="the inference server the team shares (default: %(default)s)")
    parser.add_argument("--clients", type=int, default=4, help=f"language servers, 1-{MAX_CLIENTS} (default: %(default)s)")
    parser.add_argument("--requests", type=int, default=20,
                        help=f"inline completions per language server, 1-{MAX_REQUESTS} (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=60.0,
                        help=f"stop asking after this many seconds, at most {MAX_DURATION_S:g} (default: %(default)s)")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--json", action="store_true", help="one JSON object")


def main(args: argparse.Namespace) -> int:
    if not 1 <= args.clients <= MAX_CLIENTS or not 1 <= args.requests <= MAX_REQUESTS \
            or not 0 < args.duration <= MAX_DURATION_S:
        print(f"bench load: --clients 1-{MAX_CLIENTS}, --requests 1-{MAX_REQUESTS}, "
              f"--duration up to {MAX_DURATION_S:g} s", file=sys.stderr)
        return 2
    result = asyncio.run(run_load(args.server, args.clients, args.requests, args.duration, args.max_new_tokens))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['server']}: {result['clients']} language servers, {result['requests']} requests "
              f"({result['completed']} completed, {result['errors']} errors, {result['empty']} empty) "
              f"in {result['wall_s']:.1f} s")
        print(f"latency p50 {result['p50_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms; "
              f"throughput {result['throughput_rps']:.2f} completions/s")
        for sample in result["error_samples"]:
            print(f"  error: {sample}")
    return 1 if result["errors"] else 0
