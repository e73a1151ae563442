"""Helpers for the real-server tests: start a server process in its own session with its output
in a log file, wait for it to answer, stop its process group; skip (or, under ``CI``, fail) when a
prerequisite is missing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

START_TIMEOUT_S = 120.0


def require(ok: bool, reason: str) -> None:
    """Skip without ``ok``; under CI a missing prerequisite is a failure instead."""
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so a missing prerequisite fails the test)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = START_TIMEOUT_S, uds: str | None = None,
                 path: str = "/health") -> None:
    """Poll GET ``path`` until HTTP 200; fail with the end of the process's log if it exits first."""
    deadline = time.monotonic() + timeout
    transport = httpx.HTTPTransport(uds=uds) if uds else None
    with httpx.Client(transport=transport, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"{process.args[0]} exited with {process.returncode} before serving:\n{log_tail(process)}")
            try:
                if client.get(f"{url}{path}").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    pytest.fail(f"{url} did not become healthy in {timeout:g} s:\n{log_tail(process)}")


def log_tail(process: subprocess.Popen) -> str:
    return Path(process.log_path).read_text(errors="replace")[-3000:]  # type: ignore[attr-defined]


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the process group started with ``start_new_session``; SIGKILL it if that is not enough."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(10)
            return
        except subprocess.TimeoutExpired:
            pass


def start_process(command: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``command`` in a new session, its output to ``log_path`` (a pipe nobody reads would fill)."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   env=env, start_new_session=True)
    process.log_path = log_path  # type: ignore[attr-defined]
    return process


@contextmanager
def serving(command: list[str], port: int, log_path: Path, env: dict[str, str] | None = None,
            path: str = "/health") -> Iterator[str]:
    """A server process on 127.0.0.1:``port`` from healthy to stopped; its base URL."""
    process = start_process(command, log_path, env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, path=path)
        yield url
    finally:
        stop_group(process)
