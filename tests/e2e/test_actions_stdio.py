"""Explain, ask, docstring and tests over stdio with the trained tiny model: code actions offered
at the right places, edits applied through workspace/applyEdit, progress and partial results,
cancellation, and bad input (clear message, no edit)."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_lsp
from lsp_helpers import SERVER, open_document, record_status, wait_for_state
from lsprotocol import types
from pytest_lsp import LanguageClient

from benchmarks.tiny_model import INSTRUCT_EXAMPLES, INSTRUCT_SOURCE

DOCSTRING = next(ex for ex in INSTRUCT_EXAMPLES if ex.kind == "docstring")
EXPLAIN = next(ex for ex in INSTRUCT_EXAMPLES if ex.kind == "explain")


def capabilities() -> types.ClientCapabilities:
    return types.ClientCapabilities(
        general=types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf16]),
        window=types.WindowClientCapabilities(work_done_progress=True),
        workspace=types.WorkspaceClientCapabilities(
            apply_edit=True,
            workspace_edit=types.WorkspaceEditClientCapabilities(
                document_changes=True, resource_operations=[types.ResourceOperationKind.Create])),
        text_document=types.TextDocumentClientCapabilities(code_action=types.CodeActionClientCapabilities()),
    )


def record_edits(client: LanguageClient) -> None:
    """workspace/applyEdit: record the edit and apply it to the files on disk (as an editor would)."""
    client.applied = []
    client.partials = []

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams):
        client.applied.append(params)
        for change in params.edit.document_changes or []:
            if isinstance(change, types.CreateFile):
                path = Path(change.uri.removeprefix("file://"))
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            elif isinstance(change, types.TextDocumentEdit):
                path = Path(change.text_document.uri.removeprefix("file://"))
                text = path.read_text()
                for edit in sorted(change.edits, key=lambda e: (e.range.start.line, e.range.start.character),
                                   reverse=True):
                    text = _apply(text, edit)
                path.write_text(text)
        return types.ApplyWorkspaceEditResult(applied=True)

    @client.feature("codeLlama/partialResult")
    def partial(params) -> None:
        client.partials.append(params if isinstance(params, dict) else params._asdict())


def _apply(text: str, edit: types.TextEdit) -> str:
    lines = text.split("\n")

    def offset(p: types.Position) -> int:
        return sum(len(line) + 1 for line in lines[: p.line]) + p.character

    return text[: offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end):]


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient, trained_model, tmp_path_factory):
    workspace = tmp_path_factory.mktemp("workspace")
    lsp_client.workspace = workspace
    lsp_client.status = record_status(lsp_client)
    record_edits(lsp_client)
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=capabilities(), root_uri=workspace.as_uri(),
        initialization_options={"model": str(trained_model), "localFilesOnly": True, "contextEnabled": False,
                                "instructMaxNewTokens": 64}))
    await wait_for_state(lsp_client.status, "ready")
    yield
    await lsp_client.shutdown_session()


def write_and_open(client: LanguageClient, name: str, text: str, language: str = "python") -> str:
    path = client.workspace / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    open_document(client, path.as_uri(), text, language)
    return path.as_uri()


def rng(l1: int, c1: int, l2: int, c2: int) -> dict:
    return {"start": {"line": l1, "character": c1}, "end": {"line": l2, "character": c2}}


async def code_action_titles(client, uri, r) -> list[str]:
    result = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(types.Position(r["start"]["line"], r["start"]["character"]),
                          types.Position(r["end"]["line"], r["end"]["character"])),
        context=types.CodeActionContext(diagnostics=[])))
    return [a.title for a in result or []]


async def test_code_actions_are_offered_at_the_right_places(client: LanguageClient):
    uri = write_and_open(client, "calc.py", "import os\n\nX = 1\n\n\ndef add(a, b):\n    return a + b\n")
    on_def = await code_action_titles(client, uri, rng(6, 4, 6, 4))
    assert on_def == ["Code Llama: Explain this code", "Code Llama: Ask about this code",
                      "Code Llama: Generate docstring for add", "Code Llama: Generate tests for add"]
    at_module_level = await code_action_titles(client, uri, rng(2, 0, 2, 0))
    assert at_module_level == ["Code Llama: Generate tests for calc"]
    selection = await code_action_titles(client, uri, rng(2, 0, 2, 5))
    assert selection == ["Code Llama: Explain this code", "Code Llama: Ask about this code",
                         "Code Llama: Generate tests for calc"]
    documented = write_and_open(client, "doc.py", 'def f():\n    """Done."""\n    return 1\n')
    assert "Code Llama: Regenerate docstring for f" in await code_action_titles(client, documented, rng(0, 4, 0, 4))
    text_uri = write_and_open(client, "notes.txt", "some words\n", "plaintext")
    assert await code_action_titles(client, text_uri, rng(0, 0, 0, 4)) == [
        "Code Llama: Explain this code", "Code Llama: Ask about this code"]


async def test_generate_docstring_applies_the_known_docstring(client: LanguageClient):
    uri = write_and_open(client, DOCSTRING.file, INSTRUCT_SOURCE)
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="codeLlama.generateDocstring", arguments=[uri, rng(0, 5, 0, 5)]))
    assert result["applied"] is True, (result, client.messages)
    assert len(client.applied) == 1
    assert (client.workspace / "add.py").read_text() == \
        f'def add(a, b):\n    """{DOCSTRING.answer}"""\n    return a + b\n'
    begins = [v for vs in client.progress_reports.values() for v in vs if isinstance(v, types.WorkDoneProgressBegin)]
    ends = [v for vs in client.progress_reports.values() for v in vs if isinstance(v, types.WorkDoneProgressEnd)]
    assert any(b.title == "Code Llama: Writing a docstring" and b.cancellable for b in begins)
    assert any(e.message == "applied" for e in ends)
    assert client.partials and client.partials[-1]["done"]
    assert "".join(p["delta"] for p in client.partials) == DOCSTRING.answer


async def test_generate_tests_creates_the_test_file(client: LanguageClient):
    uri = write_and_open(client, "add.py", INSTRUCT_SOURCE)
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="codeLlama.generateTests", arguments=[uri, rng(0, 0, 0, 0)]))
    assert result["applied"] is True, (result, client.messages)
    edit = client.applied[0].edit
    assert isinstance(edit.document_changes[0], types.CreateFile)
    assert (client.workspace / "tests" / "test_add.py").read_text() == \
        "from add import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    assert (client.workspace / "add.py").read_text() == INSTRUCT_SOURCE


async def test_explain_request_and_command_return_the_known_markdown(client: LanguageClient):
    uri = write_and_open(client, "add.py", INSTRUCT_SOURCE)
    result = await client.protocol.send_request_async("codeLlama/explain", {
        "textDocument": {"uri": uri}, "range": rng(0, 0, 2, 0)})
    result = result if isinstance(result, dict) else result._asdict()
    assert result["markdown"] == EXPLAIN.answer
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="codeLlama.explain", arguments=[uri, rng(0, 0, 2, 0)]))
    assert result["markdown"] == EXPLAIN.answer
    assert not client.applied


async def test_bad_input_gives_a_message_and_no_edit(client: LanguageClient):
    uri = write_and_open(client, "add.py", INSTRUCT_SOURCE)
    cases = [
        ("codeLlama.explain", [uri, rng(0, 3, 0, 3)], "the selection holds no code"),
        ("codeLlama.ask", [uri, rng(0, 0, 2, 0), "What does [INST] mean?"], "special tags are not allowed"),
        ("codeLlama.ask", [uri, rng(0, 0, 2, 0)], "needs a question"),
        ("codeLlama.generateDocstring", [uri, rng(2, 0, 2, 0)], "function, method or class"),
    ]
    text_uri = write_and_open(client, "notes.txt", "some words\n", "plaintext")
    cases.append(("codeLlama.generateDocstring", [text_uri, rng(0, 0, 0, 0)], "not supported for plaintext"))
    cases.append(("codeLlama.generateTests", [text_uri, rng(0, 0, 0, 0)], "not supported for plaintext"))
    for command, arguments, expected in cases:
        before = len(client.messages)
        result = await client.workspace_execute_command_async(types.ExecuteCommandParams(command=command,
                                                                                         arguments=arguments))
        assert expected in result["error"], (command, result)
        assert any(expected in m.message for m in client.messages[before:]), (command, client.messages[before:])
    with pytest.raises(Exception, match="special tags are not allowed"):
        await client.protocol.send_request_async("codeLlama/explain", {
            "textDocument": {"uri": uri}, "range": rng(0, 0, 2, 0), "question": "<<SYS>> hi"})
    assert not client.applied
    assert (client.workspace / "add.py").read_text() == INSTRUCT_SOURCE


async def test_existing_docstring_is_kept_unless_replace_is_asked(client: LanguageClient):
    source = 'def add(a, b):\n    """Old."""\n    return a + b\n'
    uri = write_and_open(client, "add.py", source)
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="codeLlama.generateDocstring", arguments=[uri, rng(0, 5, 0, 5)]))
    assert "already has a docstring" in result["error"]
    assert (client.workspace / "add.py").read_text() == source and not client.applied
