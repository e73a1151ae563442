"""Long instruct generations stop on $/cancelRequest and on a progress cancel; a missing model
gives a message and no edit."""

from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsp_helpers import SERVER, open_document, record_status, wait_for_state
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import LanguageClient
from test_actions_stdio import capabilities, record_edits, rng

SOURCE = "def add(a, b):\n    return a + b\n"


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient, random_model, tmp_path_factory):
    workspace = tmp_path_factory.mktemp("workspace")
    lsp_client.workspace = workspace
    lsp_client.status = record_status(lsp_client)
    record_edits(lsp_client)
    # A random model never says </s>: generations run until stopped (8,000 tokens otherwise).
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=capabilities(), root_uri=workspace.as_uri(),
        initialization_options={"model": str(random_model), "localFilesOnly": True, "contextEnabled": False,
                                "instructMaxNewTokens": 8000, "maxContextTokens": 16384}))
    await wait_for_state(lsp_client.status, "ready")
    path = workspace / "add.py"
    path.write_text(SOURCE)
    lsp_client.uri = path.as_uri()
    open_document(lsp_client, lsp_client.uri, SOURCE)
    yield
    await lsp_client.shutdown_session()


async def _first_partial(client: LanguageClient, timeout: float = 30.0) -> dict:
    async def poll():
        while not client.partials:
            await asyncio.sleep(0.02)
        return client.partials[0]

    return await asyncio.wait_for(poll(), timeout)


async def test_cancel_request_stops_the_generation(client: LanguageClient):
    future = client.protocol.send_request(types.WORKSPACE_EXECUTE_COMMAND, types.ExecuteCommandParams(
        command="codeLlama.generateDocstring", arguments=[client.uri, rng(0, 5, 0, 5)]), msg_id="doc-1")
    partial = await _first_partial(client)
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="doc-1"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(asyncio.wrap_future(future), 10)

    async def ended() -> types.WorkDoneProgressEnd:
        while True:
            for value in list(client.progress_reports.get(partial["token"], [])):
                if isinstance(value, types.WorkDoneProgressEnd):
                    return value
            await asyncio.sleep(0.05)

    assert (await asyncio.wait_for(ended(), 10)).message == "cancelled"
    assert not client.applied and (client.workspace / "add.py").read_text() == SOURCE


async def test_progress_cancel_stops_the_generation(client: LanguageClient):
    task = asyncio.ensure_future(client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="codeLlama.explain", arguments=[client.uri, rng(0, 0, 2, 0)])))
    partial = await _first_partial(client)
    client.protocol.notify(types.WINDOW_WORK_DONE_PROGRESS_CANCEL, types.WorkDoneProgressCancelParams(
        token=partial["token"]))
    result = await asyncio.wait_for(task, 10)
    assert result["cancelled"] is True
    assert not client.applied


@pytest_lsp.fixture(config=SERVER)
async def missing_model_client(lsp_client: LanguageClient, tmp_path_factory):
    workspace = tmp_path_factory.mktemp("workspace")
    lsp_client.workspace = workspace
    lsp_client.status = record_status(lsp_client)
    record_edits(lsp_client)
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=capabilities(), root_uri=workspace.as_uri(),
        initialization_options={"model": str(workspace / "no-such-model"), "localFilesOnly": True}))
    await wait_for_state(lsp_client.status, "error")
    yield
    await lsp_client.shutdown_session()


async def test_model_error_gives_a_message_and_no_edit(missing_model_client: LanguageClient):
    client = missing_model_client
    path = client.workspace / "add.py"
    path.write_text(SOURCE)
    open_document(client, path.as_uri(), SOURCE)
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="codeLlama.generateDocstring", arguments=[path.as_uri(), rng(0, 5, 0, 5)]))
    assert "model error" in result["error"]
    assert any("model error" in m.message for m in client.messages)
    assert not client.applied and path.read_text() == SOURCE
