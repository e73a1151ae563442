"""``sharedModelServer``: one ``code-llama-ls model-server`` per user and model, for every window.

Each editor window starts its own language server; with the in-process backend each would load
its own copy of the model (~14 GB for 7B). With ``sharedModelServer: true`` the first language
server that needs the model starts a model server on a Unix socket in a per-user runtime folder
(``$XDG_RUNTIME_DIR/code-llama-ls``, else ``/tmp/code-llama-ls-<uid>``, mode 0700), named by a
hash of the settings that decide the model; later ones find it there and connect to it with the
``openai`` backend (token-id prompts). A lock file beside the socket makes starting it a critical
section: a second window waits for the first one's start and then reuses it.

Every language server holds a lease (``GET /lease``, a connection left open) for its lifetime;
the model server exits ``sharedModelServerIdleS`` seconds after the last lease ends and the last
request finished. A model server that went away (killed, crashed) is started again on the next
request.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx

from code_llama_ls.backends.base import BackendError, BackendStatus, CancelToken, Chunk, GenerationRequest, ProgressCallback
from code_llama_ls.backends.http import RemoteOptions
from code_llama_ls.backends.openai_backend import OpenAICompletionsBackend
from code_llama_ls.prompts.tokenization import ModelTokenizer
from code_llama_ls.settings import Settings

START_TIMEOUT_S = 600.0
"""How long a start may take, model load included (a 7B model from a cold disk)."""
POLL_S = 0.1
MAX_SOCKET_PATH = 100  # bytes; sun_path holds 108 on Linux, 104 on macOS


def runtime_dir() -> Path:
    """The per-user folder for sockets, locks and logs; refuses one another user could reach."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(base) / "code-llama-ls" if base else Path(tempfile.gettempdir()) / f"code-llama-ls-{os.getuid()}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise BackendError(f"{path} belongs to another user or is open to others; the shared model server "
                           "will not put its socket there")
    return path


def server_key(settings: Settings) -> str:
    """Settings that decide what the model server computes; equal keys share one server."""
    fields = [settings.model, settings.tokenizer_name, settings.device, settings.dtype, settings.local_files_only,
              settings.engine, settings.compile, settings.threads, settings.max_context_tokens]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:16]


def model_server_command(settings: Settings, socket: Path, idle_s: float) -> list[str]:
    command = [sys.executable, "-m", "code_llama_ls", "model-server", "--model", settings.model,
               "--socket", str(socket), "--idle-timeout", str(idle_s), "--device", settings.device,
               "--dtype", settings.dtype, "--engine", settings.engine, "--compile", settings.compile]
    if settings.threads:
        command += ["--threads", str(settings.threads)]
    if settings.max_context_tokens:
        command += ["--max-context-tokens", str(settings.max_context_tokens)]
    if settings.tokenizer:
        command += ["--tokenizer", settings.tokenizer]
    if settings.local_files_only:
        command.append("--local-files-only")
    return command


def _health(socket: Path) -> tuple[int, dict] | None:
    """(HTTP status, body) of the server's /health, or None when nothing listens there."""
    if not socket.exists():
        return None
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(socket)), timeout=5.0) as client:
            response = client.get("http://localhost/health")
            return response.status_code, response.json()
    except (httpx.TransportError, ValueError):
        return None


def ensure_server(settings: Settings, folder: Path, idle_s: float) -> tuple[dict, subprocess.Popen | None]:
    """The running model server's /health, starting the server first if none answers.

    Blocking (run it off the event loop). Returns the health body and the process if this call
    started it."""
    key = server_key(settings)
    socket, log_path = folder / f"model-{key}.sock", folder / f"model-{key}.log"
    with open(folder / f"model-{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        process: subprocess.Popen | None = None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            found = _health(socket)
            if found is not None and found[0] == 200:
                return found[1], process
            if found is not None and found[1].get("status") == "error":
                if process is not None:
                    process.terminate()
                raise BackendError(f"the shared model server could not load the model: {found[1].get('message')}")
            if found is None and process is None:  # nobody listens: start it (a loading one is waited for)
                with open(log_path, "ab") as log:
                    process = subprocess.Popen(model_server_command(settings, socket, idle_s), stdin=subprocess.DEVNULL,
                                               stdout=log, stderr=log, start_new_session=True)
            if process is not None and process.poll() is not None:
                tail = log_path.read_text(errors="replace").splitlines()[-5:]
                raise BackendError(f"the shared model server exited with code {process.returncode} while "
                                   f"starting: {' / '.join(tail)} (log: {log_path})")
            time.sleep(POLL_S)
        if process is not None:
            process.terminate()
        raise BackendError(f"the shared model server did not become ready in {START_TIMEOUT_S:g} s (log: {log_path})")


async def hold_lease(socket: Path) -> None:
    """Keep a ``GET /lease`` connection open until the server closes it (or this is cancelled)."""
    reader, writer = await asyncio.open_unix_connection(str(socket))
    try:
        writer.write(b"GET /lease HTTP/1.1\r\nHost: localhost\r\n\r\n")
        await writer.drain()
        while await reader.read(4096):
            pass
    finally:
        writer.close()


class SharedModelServerBackend:
    """The ``openai`` backend on the shared model server's socket, starting the server as needed."""

    name = "shared"
    supports_healing = False  # the healing constraint does not travel over /v1/completions

    def __init__(self, settings: Settings, tokenizer: ModelTokenizer) -> None:
        self.settings = settings
        self.tokenizer = tokenizer
        self.folder = runtime_dir()
        self.socket = self.folder / f"model-{server_key(settings)}.sock"
        if len(os.fsencode(self.socket)) > MAX_SOCKET_PATH:
            raise BackendError(f"the shared model server's socket path {self.socket} is too long for a Unix "
                               "socket; set XDG_RUNTIME_DIR to a shorter folder")
        # token ids always: the server is ours; no key, no TLS on a socket of the user's own
        options = replace(RemoteOptions.from_settings(settings), url=f"unix://{self.socket}", api_key_env=None,
                          ca_cert_path=None, prompt_format="token_ids", instruct_endpoint="completions")
        self._remote = OpenAICompletionsBackend(options, tokenizer)
        self._lease: asyncio.Task | None = None
        self._process: subprocess.Popen | None = None
        self._device = "cpu"
        self.server_pid: int | None = None

    @property
    def device_type(self) -> str:
        return self._device.split(":", 1)[0]

    def status(self) -> BackendStatus:
        status = self._remote.status()
        status.device = self._device
        status.extra = {**status.extra, "backend": self.name, "modelServerPid": self.server_pid}
        return status

    def cache_stats(self) -> dict[str, dict]:
        return {}  # the KV cache lives in the model server's process

    async def load(self, progress: ProgressCallback) -> None:
        progress(f"connecting to the shared model server for {self.settings.model}", 5)
        health, process = await asyncio.to_thread(ensure_server, self.settings, self.folder,
                                                  float(self.settings.shared_model_server_idle_s))
        if process is not None:
            self._process = process
        self._device = health.get("device") or "cpu"
        self.server_pid = health.get("pid")
        self._lease = asyncio.ensure_future(hold_lease(self.socket))
        self._lease.add_done_callback(lambda task: task.cancelled() or task.exception())
        await self._remote.load(progress)

    async def stream(self, request: GenerationRequest, cancel: CancelToken) -> AsyncIterator[Chunk]:
        for attempt in (1, 2):
            if self._lease is None or self._lease.done():  # the server went away: start (or find) one again
                self._reap()
                await self.load(lambda message, percentage: None)
            started = False
            try:
                async with contextlib.aclosing(self._remote.stream(request, cancel)) as chunks:
                    async for chunk in chunks:
                        started = True
                        yield chunk
                return
            except BackendError:
                # Gone before its lease's end was noticed: once, start it again and retry.
                if started or attempt == 2 or await asyncio.to_thread(_health, self.socket) is not None:
                    raise
                if self._lease is not None:
                    self._lease.cancel()

    async def close(self) -> None:
        if self._lease is not None:
            self._lease.cancel()
            with contextlib.suppress(BaseException):
                await self._lease
        await self._remote.close()
        self._reap()

    def _reap(self) -> None:
        """Collect the exit status of a server this process started, once it has exited."""
        if self._process is not None and self._process.poll() is not None:
            self._process = None
