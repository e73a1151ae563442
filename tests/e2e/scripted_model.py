"""An OpenAI-compatible model on a loopback port that streams what a test scripts, for tests that
drive the real server from synchronous code (its asyncio loop runs in a thread of its own)."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backends"))

from loopback import LoopbackServer, openai_models, stream_completion  # noqa: E402


class ScriptedModel:
    """Streams ``reply`` (a string: one chunk; a list: one chunk each, ``delay`` seconds apart) for
    every completion request."""

    def __init__(self) -> None:
        self.reply: str | list[str] = ""
        self.delay = 0.0
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.server = LoopbackServer(self._handle)
        self.url = asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)

    async def _handle(self, request, reply) -> None:
        if not await openai_models(request, reply):
            await stream_completion(reply, [self.reply] if isinstance(self.reply, str) else self.reply, self.delay)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
