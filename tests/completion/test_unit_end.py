"""When a left-to-right generation may stop: a whole line past what will be shown leaves the
block. Lines that only look like it — a clause that goes on with the statement, a header still
waiting for its body — do not stop it; CRLF documents and suggestions after a header count the
same way."""

from __future__ import annotations

from code_llama_ls.completion.engine import UnitEnd
from code_llama_ls.completion.shape import cursor_context

FUNCTION = "def f(x):\n    if x:\n        "


def reached(prefix: str, suffix: str, produced: str) -> bool:
    return UnitEnd(cursor_context(prefix, suffix, "python")).reached(produced)


def test_a_line_leaving_the_block_ends_the_unit():
    prefix = "import os\n\n\ndef f(x):\n    y = x + 1\n    return "
    assert reached(prefix, "\n", "y * 2\n\ndef g():\n")


def test_a_clause_going_on_with_the_statement_does_not():
    assert not reached(FUNCTION, "", "return a\n    else:\n")
    assert not reached(FUNCTION, "", "return a\n    elif x > 2:\n")
    assert not reached("try:\n    ", "", "run()\nexcept ValueError:\n")


def test_a_header_waiting_for_its_body_does_not():
    prefix = "def walk(root):\n    for name in names:\n        "
    assert not reached(prefix, "\n", "path = join(root, name)\n        if exists(path):\n")


def test_after_a_header_the_body_sets_the_level():
    prefix = "import os\n\n\ndef f(x):"
    assert not reached(prefix, "\n", "\n    y = x + 1\n    return y\n")  # still the body
    assert reached(prefix, "\n", "\n    y = x + 1\n    return y\n\ndef g():\n")


def test_crlf_documents():
    prefix = "import os\r\n\r\n\r\ndef f(x):\r\n    y = x + 1\r\n    return "
    assert reached(prefix, "\r\n", "y * 2\n\ndef g():\n")


def test_once_over_it_stays_over():
    end = UnitEnd(cursor_context("def f(x):\n    return ", "\n", "python"))
    assert end.reached("x\n\ndef g():\n")
    assert end.reached("x\n\ndef g():\n    return 2\n")  # a chunk that came after the stop


async def test_a_scripted_left_to_right_generation_stops_at_the_unit_end_and_an_empty_prompt_is_skipped(
        smollm2_tokenizer):
    import asyncio
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "actions"))
    from scripted import ScriptedBackend  # noqa: E402

    from code_llama_ls.completion.engine import Completion, CompletionEngine, NoSuggestion
    from code_llama_ls.runtime.manager import Runtime
    from code_llama_ls.documents import Document
    from code_llama_ls.settings import Settings

    backend = ScriptedBackend("y * 2\n\ndef g():\n    return 3\n\n\ndef h():\n    pass\n", chunk=2)
    runtime = Runtime(smollm2_tokenizer, backend)
    settings = Settings(debounce_ms=0, context_enabled=False, token_healing=False)  # the script does not heal
    future = asyncio.get_running_loop().create_future()
    future.set_result(runtime)
    engine = CompletionEngine(lambda: future, lambda: settings)
    before = "def f(x):\n    return "
    result = await engine.suggest(Document("file:///t.py", before + "\n", 1), len(before))
    assert isinstance(result, Completion) and result.text == "y * 2" and result.stop_reason == "unit_end"
    assert backend.requests[0].infill is None  # no suffix text for servers that template themselves
    empty = await engine.suggest(Document("file:///e.py", "", 1), 0)
    assert isinstance(empty, NoSuggestion) and "nothing before the cursor" in empty.reason
    assert len(backend.requests) == 1
