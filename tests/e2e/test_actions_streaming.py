"""An explanation streamed to the real stdio server's client costs a bounded number of messages:
at most one notification per 100 ms, partial results totalling at most twice the answer's bytes,
and the deltas add up to the answer."""

from __future__ import annotations

import json
import time

import pytest
from scripted_model import ScriptedModel
from sync_client import StdioClient

PIECES = [f" word{i}" for i in range(150)]  # ~1.2 KB in 150 chunks over ~3 s, a fast GPU's pace
ANSWER = "".join(PIECES).strip()


@pytest.fixture
def client(tokenizer_dir):
    model = ScriptedModel()
    model.reply, model.delay = PIECES, 0.02
    client = StdioClient()
    client.on_request["window/workDoneProgress/create"] = lambda params: None
    client.initialize({"window": {"workDoneProgress": True}}, {
        "model": "m", "tokenizer": str(tokenizer_dir), "localFilesOnly": True, "backend": "openai", "url": model.url,
        "maxRetries": 0, "contextEnabled": False, "instructMaxNewTokens": 512})
    yield client
    client.close()
    model.close()


def test_an_explanation_streams_deltas_at_a_bounded_rate(client):
    uri = "file:///workspace/add.py"
    client.open(uri, "def add(a, b):\n    return a + b\n")
    seen = len(client.notifications)
    started = time.monotonic()
    result = client.request("codeLlama/explain", {"textDocument": {"uri": uri},
                                                  "range": {"start": {"line": 0, "character": 0},
                                                            "end": {"line": 2, "character": 0}}})
    elapsed = time.monotonic() - started
    assert result["markdown"] == ANSWER
    streamed = [n for n in client.notifications[seen:]
                if n["method"] == "codeLlama/partialResult" or
                (n["method"] == "$/progress" and n["params"]["value"]["kind"] == "report")]
    partials = [n["params"] for n in streamed if n["method"] == "codeLlama/partialResult"]
    assert "".join(p["delta"] for p in partials) == ANSWER
    assert [p["done"] for p in partials] == [False] * (len(partials) - 1) + [True]
    assert len(partials) >= 3, "the answer was streamed, not sent once at the end"
    assert len(streamed) <= elapsed / 0.1 + 2, (len(streamed), elapsed)
    sent = sum(len(json.dumps(p, ensure_ascii=False).encode()) for p in partials)
    assert sent <= 2 * len(ANSWER.encode()), (sent, len(ANSWER.encode()))
