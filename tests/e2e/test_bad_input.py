"""Bad input, over stdio: the server never crashes and never leaves a request unanswered.

Each server start costs seconds, so one test drives one server through several related bad
inputs. Every wait is bounded (``asyncio.wait_for``); nothing can hang the suite.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import pytest_lsp
from lsp_helpers import SERVER, end_position, open_document, record_status, start, wait_for_state
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from benchmarks.tiny_model import KNOWN_EXAMPLES

ADD = next(ex for ex in KNOWN_EXAMPLES if ex.prefix.startswith("def add("))
ADD_TEXT = ADD.prefix + ADD.suffix
ADD_MIDDLE = "return a + b"
URI = "file:///workspace/add.py"
MISSING_FOLDER = "/nonexistent/folder"
MISSING_HUB_ID = "codellama/no-such-model-for-tests"
WAIT = 60.0  # the most any single wait may take
QUICK = 10.0  # requests that need no model are answered in milliseconds


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient):
    """A started server, not yet initialized: each test picks its own initializationOptions."""
    lsp_client.status = record_status(lsp_client)
    yield
    await asyncio.wait_for(lsp_client.shutdown_session(), WAIT)


def inline_params(uri: str, position: types.Position) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=position,
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
    )


async def inline(client: LanguageClient, uri: str, position: types.Position, timeout: float = WAIT) -> list[str]:
    result = await asyncio.wait_for(client.text_document_inline_completion_async(inline_params(uri, position)),
                                    timeout)
    return [item.insert_text for item in result.items]


async def wait_until(predicate: Callable[[], object], timeout: float = QUICK, what: str = "condition"):
    async def poll():
        while not (value := predicate()):
            await asyncio.sleep(0.02)
        return value

    try:
        return await asyncio.wait_for(poll(), timeout)
    except asyncio.TimeoutError:  # TimeoutError itself only from Python 3.11
        raise AssertionError(f"timed out waiting for {what}") from None


def logs_after(client: LanguageClient, index: int, *needles: str) -> list[str]:
    return [m.message for m in client.log_messages[index:] if all(n in m.message for n in needles)]


def errors_shown(client: LanguageClient) -> list[str]:
    return [m.message for m in client.messages if m.type == types.MessageType.Error]


def states(client: LanguageClient) -> list[str]:
    return [s["state"] for s in client.status]


def configure(client: LanguageClient, settings) -> None:
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=settings))


async def prompt(client: LanguageClient, params, timeout: float = WAIT):
    result = await asyncio.wait_for(client.protocol.send_request_async("codeLlama/prompt", params), timeout)
    return result if isinstance(result, dict) else result._asdict()


def unchecked_position(line, character) -> types.Position:
    """A Position that lsprotocol would refuse (negative, not a number): the client sends it as it is.

    A dict would not do: the client's converter cannot unstructure a dict as the params of a
    request type it knows.
    """
    position = types.Position(line=0, character=0)
    object.__setattr__(position, "line", line)  # bypasses attrs' validators on purpose
    object.__setattr__(position, "character", character)
    return position


def good_model(trained_model: Path, **more) -> dict:
    return {"model": str(trained_model), "localFilesOnly": True, "maxNewTokens": 32, "contextEnabled": False, **more}


# -- a model that is not there ------------------------------------------------------------------


async def test_missing_model_folder_is_reported_once_and_a_good_model_recovers(client, trained_model):
    await start(client, {"model": MISSING_FOLDER, "localFilesOnly": True})
    await wait_for_state(client.status, "error", WAIT)
    open_document(client, URI, ADD_TEXT)
    for _ in range(3):
        assert await inline(client, URI, end_position(ADD.prefix)) == []
    await asyncio.sleep(0.3)  # room for any (wrong) further error message to arrive
    errors = errors_shown(client)
    assert len(errors) == 1, errors
    assert MISSING_FOLDER in errors[0]
    error_status = next(s for s in client.status if s["state"] == "error")
    assert MISSING_FOLDER in error_status["message"] and error_status["model"] == MISSING_FOLDER

    # Still alive: pointing it at a good model makes completions work.
    configure(client, {"codeLlama": good_model(trained_model)})
    await wait_for_state(client.status, "ready", WAIT)
    assert await inline(client, URI, end_position(ADD.prefix)) == [ADD_MIDDLE]
    assert len(errors_shown(client)) == 1


async def test_missing_hub_model_is_reported_once_per_configuration(client):
    await start(client, {"model": MISSING_HUB_ID, "localFilesOnly": True})
    await wait_for_state(client.status, "error", WAIT)
    open_document(client, URI, ADD_TEXT)
    for _ in range(3):
        assert await inline(client, URI, end_position(ADD.prefix)) == []
    # A settings change that does not touch the model neither reloads nor reports again.
    configure(client, {"codeLlama": {"maxNewTokens": 16}})
    assert await inline(client, URI, end_position(ADD.prefix)) == []
    await asyncio.sleep(0.3)
    errors = errors_shown(client)
    assert len(errors) == 1 and MISSING_HUB_ID in errors[0], errors
    assert states(client).count("error") == 1

    # Another missing model: exactly one more message, naming it.
    configure(client, {"codeLlama": {"model": MISSING_FOLDER}})
    await wait_until(lambda: states(client).count("error") == 2, WAIT, "a second error status")
    assert await inline(client, URI, end_position(ADD.prefix)) == []
    await asyncio.sleep(0.3)
    errors = errors_shown(client)
    assert len(errors) == 2 and MISSING_FOLDER in errors[1], errors
    # The prompt request needs the tokenizer: a clear error, not a hang.
    with pytest.raises(JsonRpcException, match="no such folder"):
        await prompt(client, {"textDocument": {"uri": URI}, "position": {"line": 1, "character": 4}})


# -- positions and documents --------------------------------------------------------------------


async def test_bad_positions_and_unopened_documents_are_answered_with_a_log_line(client, trained_model):
    await start(client, good_model(trained_model))
    await wait_for_state(client.status, "ready", WAIT)
    open_document(client, URI, ADD_TEXT)

    mark = len(client.log_messages)
    assert await inline(client, URI, types.Position(line=50, character=0)) == []
    await wait_until(lambda: logs_after(client, mark, URI, "past the end"), what="a 'past the end' log line")

    mark = len(client.log_messages)
    unopened = "file:///workspace/never-opened.py"
    assert await inline(client, unopened, types.Position(line=0, character=0)) == []
    await wait_until(lambda: logs_after(client, mark, unopened, "not open"), what="a 'not open' log line")

    # A character past the end of its line means the end of the line (LSP).
    assert await inline(client, URI, types.Position(line=1, character=999)) == [ADD_MIDDLE]

    # codeLlama/prompt: a bad position and garbage params get error responses, not hangs.
    with pytest.raises(JsonRpcException, match="past the end"):
        await prompt(client, {"textDocument": {"uri": URI}, "position": {"line": 50, "character": 0}})
    for garbage in (None, {"garbage": [1, 2]}, [1, 2, 3], "zzz",
                    {"textDocument": {"uri": URI}, "position": {"line": "one", "character": 0}}):
        with pytest.raises(JsonRpcException):
            await prompt(client, garbage)
    result = await prompt(client, {"textDocument": {"uri": URI}, "position": {"line": 1, "character": 4}})
    assert result["prefix"] == ADD.prefix and result["suffix"] == ADD.suffix

    # And the server still completes after all of that.
    assert await inline(client, URI, end_position(ADD.prefix)) == [ADD_MIDDLE]
    assert errors_shown(client) == []


async def test_requests_with_undecodable_params_are_answered_with_a_log_line(client):
    # No model needed: these are rejected before any completion work.
    await start(client, {"model": MISSING_FOLDER, "localFilesOnly": True})
    open_document(client, URI, ADD_TEXT)
    mark = len(client.log_messages)
    bad_requests = {
        "negative line": (types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(URI, unchecked_position(-1, 0))),
        "negative character": (types.TEXT_DOCUMENT_COMPLETION, types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI), position=unchecked_position(0, -3))),
        "line of the wrong type": (types.TEXT_DOCUMENT_INLINE_COMPLETION,
                                   inline_params(URI, unchecked_position("one", 0))),
    }

    async def outcome(method, params):
        try:
            return await asyncio.wait_for(client.protocol.send_request_async(method, params), 5)
        except JsonRpcException as exc:  # a clear JSON-RPC error is a fine answer
            return exc
        except asyncio.TimeoutError:  # TimeoutError itself only from Python 3.11
            return "no answer"

    answers = await asyncio.gather(*(outcome(method, params) for method, params in bad_requests.values()))
    outcomes = dict(zip(bad_requests, answers))
    print("outcomes:", outcomes, "shown:", [m.message for m in client.messages])
    # The server answers a following good request.
    assert await inline(client, URI, end_position(ADD.prefix)) == []
    assert not [name for name, outcome in outcomes.items() if outcome == "no answer"], outcomes
    assert logs_after(client, mark, "-1") and logs_after(client, mark, "-3") and logs_after(client, mark, "one"), \
        client.log_messages[mark:]


async def test_change_to_an_unopened_document_is_logged_not_shown_as_an_error(client):
    await start(client, {"model": MISSING_FOLDER, "localFilesOnly": True})
    await wait_for_state(client.status, "error", WAIT)
    shown = len(client.messages)
    unopened = "file:///workspace/never-opened.py"
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=unopened, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0)),
            text="x")]))
    # Still answering; and messages are handled in order, so the didChange is done by now.
    assert await inline(client, unopened, types.Position(line=0, character=0)) == []
    print("shown:", [m.message for m in client.messages[shown:]])
    assert logs_after(client, 0, unopened, "change ignored"), client.log_messages
    assert client.messages[shown:] == []


# -- settings -----------------------------------------------------------------------------------

BAD_KEYS = {"maxNewTokens": -5, "noSuchKey": 1, "prefixRatio": "x"}


def warnings_for(client: LanguageClient, index: int, key: str) -> list[str]:
    return [m.message for m in client.log_messages[index:]
            if m.type == types.MessageType.Warning and f"codeLlama.{key}" in m.message]


async def test_invalid_settings_warn_per_key_and_keep_previous_values(client, trained_model):
    # Through initializationOptions: the good keys of the same object still apply (fimMode, model).
    await start(client, {"model": str(trained_model), "localFilesOnly": True, "fimMode": "spm", "contextEnabled": False, **BAD_KEYS})
    await wait_for_state(client.status, "ready", WAIT)
    for key in BAD_KEYS:
        assert len(warnings_for(client, 0, key)) == 1, (key, client.log_messages)
    open_document(client, URI, ADD_TEXT)
    position = {"line": 1, "character": 4}
    assert (await prompt(client, {"textDocument": {"uri": URI}, "position": position}))["mode"] == "spm"
    assert await inline(client, URI, end_position(ADD.prefix)) == [ADD_MIDDLE]

    # Through workspace/didChangeConfiguration: a valid maxNewTokens first, then bad keys.
    configure(client, {"codeLlama": {"maxNewTokens": 3}})
    mark = len(client.log_messages)
    configure(client, {"codeLlama": {**BAD_KEYS, "fimMode": "sideways"}})
    await wait_until(lambda: all(warnings_for(client, mark, key) for key in [*BAD_KEYS, "fimMode"]),
                     what="one warning per bad key")
    for key in [*BAD_KEYS, "fimMode"]:
        assert len(warnings_for(client, mark, key)) == 1, key
    assert (await prompt(client, {"textDocument": {"uri": URI}, "position": position}))["mode"] == "spm"
    # maxNewTokens is still 3: the generation stops after three tokens.
    generations = len([s for s in client.status if "lastTokens" in s])
    texts = await inline(client, URI, end_position(ADD.prefix))
    record = await wait_until(lambda: [s for s in client.status if "lastTokens" in s][generations:],
                              what="a generation status")
    assert record[0]["lastTokens"] == 3 and record[0]["lastStopReason"] == "max_tokens", record
    assert all(ADD_MIDDLE.startswith(text) and text != ADD_MIDDLE for text in texts), texts

    # Settings that are not an object at all: a warning, nothing else.
    mark = len(client.log_messages)
    configure(client, "maxNewTokens=5")
    configure(client, None)
    await wait_until(lambda: logs_after(client, mark, "object"), what="a warning for non-object settings")
    configure(client, {"codeLlama": {"maxNewTokens": 32}})
    assert await inline(client, URI, end_position(ADD.prefix)) == [ADD_MIDDLE]
    assert errors_shown(client) == []


# -- files that must not be completed, odd languages, odd sizes ----------------------------------


async def test_ignored_files_unknown_languages_huge_and_binary_documents(client, trained_model):
    await start(client, good_model(trained_model, ignorePatterns=["*.secret.py"]))
    await wait_for_state(client.status, "ready", WAIT)

    for uri in ("file:///workspace/.env", "file:///workspace/secrets/id_rsa", "file:///workspace/keys.secret.py"):
        open_document(client, uri, ADD_TEXT)
        mark = len(client.log_messages)
        assert await inline(client, uri, end_position(ADD.prefix)) == [], uri
        await wait_until(lambda: logs_after(client, mark, uri, "ignore"), what=f"an 'ignore rule' log for {uri}")
        with pytest.raises(JsonRpcException, match="ignore"):
            await prompt(client, {"textDocument": {"uri": uri}, "position": {"line": 1, "character": 4}})
    assert not [s for s in client.status if "lastTokens" in s], "an ignored file reached the model"

    # A language nobody knows: plain text, completions still work.
    cobol = "file:///workspace/x.cbl"
    open_document(client, cobol, ADD_TEXT, language_id="cobol")
    assert await inline(client, cobol, end_position(ADD.prefix)) == [ADD_MIDDLE]

    # A binary-looking document: answered, no crash, also after an edit with NUL bytes.
    blob = "file:///workspace/blob.py"
    open_document(client, blob, "\x00\x01\x02ELF\x00\ufffd\n" * 50 + "x = \x00", language_id="python")
    await inline(client, blob, types.Position(line=50, character=4))
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=blob, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=3, character=2), end=types.Position(line=3, character=2)),
            text="\x00\x00")]))
    await inline(client, blob, types.Position(line=3, character=4))

    # A huge document: opened, edited many times, completed; the server stays responsive.
    huge = "file:///workspace/huge.py"
    lines = 200_000
    open_document(client, huge, "".join(f"value_{i} = compute({i})\n" for i in range(lines)), language_id="python")
    for version in range(2, 12):
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=huge, version=version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(line=lines // 2, character=0),
                                  end=types.Position(line=lines // 2, character=0)),
                text="x")]))
    await inline(client, huge, types.Position(line=lines // 2, character=0))
    result = await prompt(client, {"textDocument": {"uri": huge}, "position": {"line": lines // 2, "character": 10}})
    # All ten edits arrived, in order: the cursor sits after the ten inserted characters.
    assert result["prefix"].endswith(f"value_{lines // 2 - 1} = compute({lines // 2 - 1})\nxxxxxxxxxx")
    assert result["suffix"].startswith(f"value_{lines // 2} = compute({lines // 2})\n")
    # The small document still completes as before.
    open_document(client, URI, ADD_TEXT)
    assert await inline(client, URI, end_position(ADD.prefix)) == [ADD_MIDDLE]
    assert errors_shown(client) == []


# -- malformed JSON-RPC frames (no pytest-lsp: raw bytes on the server's stdin) -------------------


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def message(**fields) -> bytes:
    return frame(json.dumps({"jsonrpc": "2.0", **fields}).encode("utf-8"))


async def read_message(stream: asyncio.StreamReader) -> dict:
    length = None
    while True:
        line = await stream.readline()
        if not line:
            raise EOFError("the server closed its stdout")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("ascii").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return json.loads(await stream.readexactly(length))


async def test_malformed_frames_do_not_stop_the_server():
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "code_llama_ls", "--stdio",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stderr = bytearray()

    async def drain_stderr():  # tracebacks are logged there: a full pipe would block the server
        while chunk := await server.stderr.read(65536):
            stderr.extend(chunk)

    drainer = asyncio.create_task(drain_stderr())
    responses: dict[object, dict] = {}

    async def response(id_) -> dict:
        while id_ not in responses:
            msg = await read_message(server.stdout)
            if "id" in msg and "method" not in msg:
                responses[msg["id"]] = msg
        return responses[id_]

    try:
        server.stdin.write(
            frame(b"{not json")
            + frame(b'{"jsonrpc": "2.0", "id": 90, "method": "caf\xe9"}')  # Latin-1, not UTF-8
            + frame(b"\xff\xfe\xfd\x00")
            + frame(b"42") + frame(b"[]") + frame(b"null") + frame(b"{}")
            + message(id=1, method="initialize", params={
                "processId": None, "rootUri": None, "capabilities": {},
                "initializationOptions": {"model": MISSING_FOLDER, "localFilesOnly": True}})
        )
        await server.stdin.drain()
        initialized = await asyncio.wait_for(response(1), WAIT)
        assert "capabilities" in initialized["result"], initialized

        server.stdin.write(
            message(method="initialized", params={})
            + message(id=2, method="no/such/method", params={})
            + message(id=3, method="codeLlama/prompt", params={"garbage": True})
            + message(id=4, method="codeLlama/prompt", params=[1, 2])
            + frame(b'{"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": ')  # cut short
            + message(id=5, method="shutdown")
        )
        await server.stdin.drain()
        assert (await asyncio.wait_for(response(2), WAIT))["error"]["code"] == -32601
        for id_ in (3, 4):
            error = (await asyncio.wait_for(response(id_), WAIT))["error"]
            assert "codeLlama/prompt" in error["message"], error
        assert "result" in await asyncio.wait_for(response(5), WAIT)
        server.stdin.write(message(method="exit"))
        await server.stdin.drain()
        assert await asyncio.wait_for(server.wait(), WAIT) == 0
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
        await asyncio.wait_for(drainer, WAIT)
        print("server stderr (tail):", stderr[-4000:].decode(errors="replace"))  # shown on failure


# -- the command line ----------------------------------------------------------------------------


def cli() -> list[str]:
    script = Path(sys.executable).with_name("code-llama-ls")
    if script.exists():
        return [str(script)]
    found = shutil.which("code-llama-ls")
    return [found] if found else [sys.executable, "-m", "code_llama_ls"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*cli(), *args], capture_output=True, text=True, timeout=WAIT)


def test_cli_refuses_a_file_that_is_not_utf8(tmp_path, trained_model):
    latin1 = tmp_path / "latin1.py"
    latin1.write_bytes("name = 'café'\n".encode("latin-1"))
    done = run_cli("complete", str(latin1), "--line", "0", "--character", "0",
                   "--model", str(trained_model), "--local-files-only")
    assert done.returncode != 0
    assert "UTF-8" in done.stderr and str(latin1) in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


@pytest.mark.parametrize("line, character, needle", [("7", "0", "past the end"), ("-1", "0", "negative")])
def test_cli_refuses_a_position_outside_the_file(tmp_path, trained_model, line, character, needle):
    source = tmp_path / "two_lines.py"
    source.write_text("x = 1\ny = 2", encoding="utf-8")
    done = run_cli("complete", str(source), "--line", line, "--character", character,
                   "--model", str(trained_model), "--local-files-only")
    assert done.returncode != 0
    assert needle in done.stderr and "Traceback" not in done.stderr, done.stderr
