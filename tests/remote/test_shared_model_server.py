"""``sharedModelServer``: two language-server processes (two editor windows) use one
``code-llama-ls model-server`` process with one model load; the second window's completion is the
first's; the model server exits once both windows are gone and its idle timeout has passed."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from benchmarks.lsp_window import Window, end_of
from benchmarks.tiny_model import KNOWN_EXAMPLES

EXAMPLE = KNOWN_EXAMPLES[1]  # the method body between two methods: one line
IDLE_S = 2


@pytest.fixture
def runtime():
    """A short private folder for XDG_RUNTIME_DIR (Unix socket paths are limited to ~100 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="cll-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def model_server_pids(socket: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"model-server" in command and str(socket).encode() in command and running(int(proc.name)):
            pids.append(int(proc.name))
    return pids


async def test_two_windows_share_one_model_server(trained_model, runtime):
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    options = {"model": str(trained_model), "localFilesOnly": True, "sharedModelServer": True,
               "sharedModelServerIdleS": IDLE_S, "contextEnabled": False, "debounceMs": 0, "maxNewTokens": 32}
    text = EXAMPLE.prefix + EXAMPLE.suffix
    first, second = Window(options, env), Window(options, env)
    try:
        # Both windows open at once: the lock lets one start the server; the other waits and reuses it.
        states = await asyncio.gather(first.start(), second.start())
        assert [state["state"] for state in states] == ["ready", "ready"]
        first.open("file:///w1/counter.py", text)
        shown_first = await first.complete("file:///w1/counter.py", *end_of(EXAMPLE.prefix))
        assert shown_first == [EXAMPLE.middle]

        second.open("file:///w2/counter.py", text)
        shown_second = await second.complete("file:///w2/counter.py", *end_of(EXAMPLE.prefix))
        assert shown_second == shown_first

        (socket,) = (runtime / "code-llama-ls").glob("model-*.sock")
        async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(socket)), timeout=10) as client:
            health = (await client.get("http://localhost/health")).json()
        assert health["loads"] == 1, "one model load for both windows"
        assert health["leases"] == 2 and health["requests"] == 2
        assert model_server_pids(socket) == [health["pid"]], "one model-server process"
    finally:
        await asyncio.gather(first.stop(), second.stop())

    deadline = time.monotonic() + IDLE_S + 30
    while (running(health["pid"]) or socket.exists()) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert not running(health["pid"]), "the model server outlived its idle timeout after both windows closed"
    assert not socket.exists()


async def test_a_window_restarts_a_model_server_that_went_away(trained_model, runtime):
    options = {"model": str(trained_model), "localFilesOnly": True, "sharedModelServer": True,
               "contextEnabled": False, "debounceMs": 0, "maxNewTokens": 32}
    window = Window(options, {**os.environ, "XDG_RUNTIME_DIR": str(runtime)})
    try:
        assert (await window.start())["state"] == "ready"
        (socket,) = (runtime / "code-llama-ls").glob("model-*.sock")
        (pid,) = model_server_pids(socket)
        os.kill(pid, 9)
        while running(pid):
            await asyncio.sleep(0.05)
        window.open("file:///w/counter.py", EXAMPLE.prefix + EXAMPLE.suffix)
        assert await window.complete("file:///w/counter.py", *end_of(EXAMPLE.prefix)) == [EXAMPLE.middle]
        (restarted,) = model_server_pids(socket)
        assert restarted != pid
    finally:
        await window.stop()
        for socket in (runtime / "code-llama-ls").glob("model-*.sock"):
            for pid in model_server_pids(socket):
                os.kill(pid, 15)
