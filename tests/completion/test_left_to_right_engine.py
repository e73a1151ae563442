"""Left to right, the completion engine's latency machinery works as it does for infilling, on a
real model (SmolLM2, in-process from its GGUF): a generation stops at the unit's end, typing the
next characters of a suggestion is served from the completion cache without a model call, and
a typed-on prompt reuses the KV cache of the one before."""

from __future__ import annotations

from code_llama_ls.completion.engine import Completion, CompletionEngine
from code_llama_ls.documents import Document
from code_llama_ls.runtime.manager import RuntimeEvents, RuntimeManager
from code_llama_ls.settings import Settings

BEFORE = "import json\n\n\ndef load(path):\n    with open(path) as handle:\n        data = json.load("
AFTER = ")\n        return data\n"


def generations(engine: CompletionEngine) -> list[dict]:
    return [event for event in engine.events if event["kind"] == "generation"]


async def test_typing_through_a_left_to_right_suggestion(smollm2_gguf):
    settings = Settings(model=str(smollm2_gguf), local_files_only=True, device="cpu", max_new_tokens=32,
                        debounce_ms=0, context_enabled=False)
    events = RuntimeEvents(lambda *a: None, lambda *a: None, lambda *a: None, lambda *a: None, lambda *a: None)
    runtime = RuntimeManager(lambda: settings, events)
    engine = CompletionEngine(runtime.get, lambda: settings)
    uri = "file:///tmp/load.py"
    try:
        first = await engine.suggest(Document(uri, BEFORE + AFTER, 1), len(BEFORE), automatic=True)
        assert isinstance(first, Completion) and len(first.text) >= 2, first
        assert (await runtime.get()).capabilities.completion_mode == "left-to-right"
        assert generations(engine)[-1]["reason"] in ("unit_end", "eot"), generations(engine)

        typed = first.text[0]
        text = BEFORE + typed + AFTER
        second = await engine.suggest(Document(uri, text, 2), len(BEFORE) + 1, automatic=True)
        assert isinstance(second, Completion) and second.from_cache, second
        assert second.text == first.text[1:] and len(generations(engine)) == 1

        other = BEFORE + "fp" + AFTER  # not what was suggested: a model call on the cached KV prefix
        await engine.suggest(Document(uri, other, 3), len(BEFORE) + 2, automatic=True)
        last = generations(engine)[-1]
        assert len(generations(engine)) == 2
        assert last["reusedTokens"] >= last["promptTokens"] - 3, last
    finally:
        await runtime.close()
