"""The real server over stdio: initialize → open/edit → completions → prompt → status → cancel → exit."""

from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsp_helpers import SERVER, capabilities, end_position, open_document, record_status, start, wait_for_state
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import LanguageClient

from benchmarks.tiny_model import KNOWN_EXAMPLES
from code_llama_ls.prompts.fim import assemble
from code_llama_ls.prompts.tokenization import ModelTokenizer

ADD = next(ex for ex in KNOWN_EXAMPLES if ex.prefix.startswith("def add("))
URI = "file:///workspace/add.py"


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient, trained_model):
    lsp_client.status = record_status(lsp_client)
    # The trained model knows the examples' prompts without added context.
    result = await start(lsp_client, {"model": str(trained_model), "localFilesOnly": True, "maxNewTokens": 32,
                                      "contextEnabled": False})
    lsp_client.init_result = result
    await wait_for_state(lsp_client.status, "ready")
    yield
    await lsp_client.shutdown_session()


def inline_params(uri: str, position: types.Position) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=position,
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
    )


async def test_initialize_advertises_inline_and_fallback_completion(client: LanguageClient):
    caps = client.init_result.capabilities
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is not None
    assert caps.text_document_sync.change == types.TextDocumentSyncKind.Incremental
    assert caps.position_encoding == types.PositionEncodingKind.Utf16


@pytest.mark.parametrize("example", KNOWN_EXAMPLES, ids=lambda ex: ex.middle.split("\n")[0][:20])
async def test_inline_completion_returns_the_known_completion(client: LanguageClient, example):
    uri = "file:///workspace/example.py"
    open_document(client, uri, example.prefix + example.suffix)
    result = await client.text_document_inline_completion_async(inline_params(uri, end_position(example.prefix)))
    texts = [item.insert_text for item in result.items]
    # The whole block the model wrote is shown.
    assert texts == [example.middle]
    start = end_position(example.prefix)
    assert result.items[0].range.start == start
    # The rest of the line is empty, or a closer the editor auto-inserted that the answer writes
    # too: the range covers it, so accepting leaves one.
    rest = example.suffix.split("\n")[0]
    covered = rest if rest and example.middle.endswith(rest) else ""
    assert result.items[0].range.end == types.Position(line=start.line, character=start.character + len(covered))


async def test_incremental_edits_are_applied_before_completing(client: LanguageClient):
    open_document(client, URI, "def add(a, b):\n    pass\n")
    # Replace "pass" with nothing, in two incremental edits (delete, then type a space and delete it).
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=1, character=4), end=types.Position(line=1, character=8)),
            text=" ")],
    ))
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=3),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=1, character=4), end=types.Position(line=1, character=5)),
            text="")],
    ))
    result = await client.text_document_inline_completion_async(inline_params(URI, end_position(ADD.prefix)))
    assert [item.insert_text for item in result.items] == [ADD.middle]


async def test_completion_returns_no_model_items_when_inline_is_supported(client: LanguageClient):
    open_document(client, URI, ADD.prefix + ADD.suffix)
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI), position=end_position(ADD.prefix)))
    assert list(result.items) == []
    assert not [s for s in client.status if s.get("lastTokens") is not None], "fallback must not generate"


async def test_prompt_request_returns_the_exact_ids(client: LanguageClient, trained_model):
    open_document(client, URI, ADD.prefix + ADD.suffix)
    position = end_position(ADD.prefix)
    result = await client.protocol.send_request_async("codeLlama/prompt", {
        "textDocument": {"uri": URI}, "position": {"line": position.line, "character": position.character}})
    result = result if isinstance(result, dict) else result._asdict()
    tokenizer = ModelTokenizer.from_pretrained(str(trained_model), local_files_only=True)
    assert result["mode"] == "psm"
    assert result["prefix"] == ADD.prefix and result["suffix"] == ADD.suffix
    assert list(result["ids"]) == assemble(tokenizer, ADD.prefix, ADD.suffix, "psm")
    assert list(result["snippets"]) == []


async def test_status_reports_ready_latency_and_progress(client: LanguageClient, trained_model):
    states = [s["state"] for s in client.status]
    assert states[0] == "loading" and "ready" in states
    assert all(s["model"] == str(trained_model) for s in client.status)
    begins = [v for reports in client.progress_reports.values() for v in reports
              if isinstance(v, types.WorkDoneProgressBegin)]
    ends = [v for reports in client.progress_reports.values() for v in reports
            if isinstance(v, types.WorkDoneProgressEnd)]
    assert begins and ends, client.progress_reports

    open_document(client, URI, ADD.prefix + ADD.suffix)
    await client.text_document_inline_completion_async(inline_params(URI, end_position(ADD.prefix)))
    await asyncio.sleep(0.2)
    last = client.status[-1]
    assert last["lastLatencyMs"] > 0 and last["lastStopReason"] == "eot"
    assert last["lastTokens"] == len(ModelTokenizer.from_pretrained(str(trained_model)).encode_infilling(ADD.middle))


async def test_requests_for_the_same_state_share_one_generation(client: LanguageClient):
    open_document(client, URI, ADD.prefix + ADD.suffix)
    before = len([s for s in client.status if "lastTokens" in s])
    params = inline_params(URI, end_position(ADD.prefix))
    first, second = await asyncio.gather(client.text_document_inline_completion_async(params),
                                         client.text_document_inline_completion_async(params))
    assert [i.insert_text for i in first.items] == [i.insert_text for i in second.items] == [ADD.middle]
    await asyncio.sleep(0.2)
    assert len([s for s in client.status if "lastTokens" in s]) - before == 1


# -- cancellation, with a random-weight model that generates until maxNewTokens ----------------

MANY_TOKENS = 3000


@pytest_lsp.fixture(config=SERVER)
async def slow_client(lsp_client: LanguageClient, random_model):
    lsp_client.status = record_status(lsp_client)
    # PSM: on this random model the SPM prompt of automatic triggers ends early on ▁<EOT>.
    await start(lsp_client, {"model": str(random_model), "localFilesOnly": True, "maxNewTokens": MANY_TOKENS,
                             "maxContextTokens": 8192, "fimMode": "psm"})
    await wait_for_state(lsp_client.status, "ready")
    yield
    await lsp_client.shutdown_session()


async def _generation_record(status: list[dict], count: int) -> dict:
    async def poll():
        while len([s for s in status if "lastTokens" in s]) < count:
            await asyncio.sleep(0.05)
        return [s for s in status if "lastTokens" in s][count - 1]
    return await asyncio.wait_for(poll(), 30)


async def test_cancel_request_stops_the_generation(slow_client: LanguageClient):
    open_document(slow_client, URI, ADD.prefix + ADD.suffix)
    future = slow_client.protocol.send_request(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(URI, end_position(ADD.prefix)), msg_id="slow-1")
    await asyncio.sleep(1.0)
    slow_client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="slow-1"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(asyncio.wrap_future(future), 30)
    record = await _generation_record(slow_client.status, 1)
    assert record["lastStopReason"] == "cancelled"
    assert 0 < record["lastTokens"] < MANY_TOKENS


async def test_newer_request_supersedes_the_running_one(slow_client: LanguageClient):
    open_document(slow_client, URI, ADD.prefix + ADD.suffix)
    older = slow_client.protocol.send_request(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(URI, end_position(ADD.prefix)), msg_id="old")
    await asyncio.sleep(1.0)
    newer = slow_client.protocol.send_request(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(URI, types.Position(line=0, character=0)), msg_id="new")
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(asyncio.wrap_future(older), 30)
    record = await _generation_record(slow_client.status, 1)
    assert record["lastStopReason"] == "cancelled" and record["lastTokens"] < MANY_TOKENS
    slow_client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="new"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(asyncio.wrap_future(newer), 30)


# -- position encodings ---------------------------------------------------------------------------

@pytest_lsp.fixture(config=SERVER)
async def utf8_client(lsp_client: LanguageClient, trained_model):
    lsp_client.status = record_status(lsp_client)
    caps = capabilities()
    caps.general = types.GeneralClientCapabilities(
        position_encodings=[types.PositionEncodingKind.Utf8, types.PositionEncodingKind.Utf16])
    lsp_client.init_result = await lsp_client.initialize_session(types.InitializeParams(
        capabilities=caps, initialization_options={"model": str(trained_model), "localFilesOnly": True}))
    await wait_for_state(lsp_client.status, "ready")
    yield
    await lsp_client.shutdown_session()


async def test_utf8_positions_are_negotiated_and_honoured(utf8_client: LanguageClient):
    assert utf8_client.init_result.capabilities.position_encoding == types.PositionEncodingKind.Utf8
    text = 'name = "🦙 café"\nvalue = name\n'
    open_document(utf8_client, URI, text)
    # The cursor after "café": in UTF-8 bytes, 'name = "' is 8, the llama 4, ' caf' 4, 'é' 2.
    result = await utf8_client.protocol.send_request_async("codeLlama/prompt", {
        "textDocument": {"uri": URI}, "position": {"line": 0, "character": 8 + 4 + 4 + 2}})
    result = result if isinstance(result, dict) else result._asdict()
    assert result["prefix"].endswith('name = "🦙 café')
    assert result["suffix"].startswith('"\nvalue = name')


@pytest_lsp.fixture(config=SERVER)
async def follow_client(lsp_client: LanguageClient, random_model):
    lsp_client.status = record_status(lsp_client)
    await start(lsp_client, {"model": str(random_model), "localFilesOnly": True, "maxNewTokens": MANY_TOKENS,
                             "maxContextTokens": 8192, "contextEnabled": False})
    await wait_for_state(lsp_client.status, "ready")
    yield
    await lsp_client.shutdown_session()


async def test_newer_request_that_types_the_running_generation_waits_for_it(follow_client: LanguageClient,
                                                                            random_model):
    """The refined rule: typing what the running generation already produced does not cancel it."""
    from benchmarks.tiny_model import greedy_complete

    total = next(ex for ex in KNOWN_EXAMPLES if ex.prefix.startswith("def total("))  # runs to maxNewTokens
    tokenizer = ModelTokenizer.from_pretrained(str(random_model), local_files_only=True)
    ids = assemble(tokenizer, total.prefix, total.suffix, "spm")  # automatic triggers use SPM
    typed = tokenizer.decode_infilling(greedy_complete(random_model, ids, 2))
    open_document(follow_client, URI, total.prefix + total.suffix)
    older = follow_client.protocol.send_request(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(URI, end_position(total.prefix)), msg_id="old")
    await asyncio.sleep(1.0)
    start_pos = end_position(total.prefix)
    follow_client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=start_pos, end=start_pos), text=typed)]))
    newer = follow_client.protocol.send_request(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(URI, end_position(total.prefix + typed)), msg_id="new")
    await asyncio.wait_for(asyncio.wrap_future(older), 120)  # answered, not cancelled
    await asyncio.wait_for(asyncio.wrap_future(newer), 120)
    record = await _generation_record(follow_client.status, 1)
    assert record["lastStopReason"] != "cancelled"
    assert record["lastTokens"] == MANY_TOKENS
