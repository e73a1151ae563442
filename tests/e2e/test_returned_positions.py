"""Positions the server sends back, applied by the test's own client in the negotiated encoding,
give the document the server meant: inline completion ranges (with the closers they replace),
code-action ranges, and the workspace edits of docstrings and tests. After each accepted edit the
client's copy and the server's (``codeLlama/documentText``) are equal.

The model is an OpenAI-compatible loopback server that streams the text a test scripts, so every
line holds characters that count differently in UTF-8, UTF-16 and UTF-32.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from scripted_model import ScriptedModel
from sync_client import StdioClient, TextModel, read_exactly

ENCODINGS = {"undeclared": (None, "utf-16"), "utf-8": (["utf-8"], "utf-8"), "utf-16": (["utf-16"], "utf-16"),
             "utf-32": (["utf-32"], "utf-32")}


class Editor:
    """The client side: open documents as ``TextModel``s, files on disk, and workspace/applyEdit."""

    def __init__(self, client: StdioClient, encoding: str) -> None:
        self.client, self.encoding = client, encoding
        self.open_models: dict[str, TextModel] = {}
        self.versions: dict[str, int] = {}
        client.on_request["workspace/applyEdit"] = self.apply_workspace_edit
        client.on_request["window/workDoneProgress/create"] = lambda params: None

    def open(self, path: Path, text: str) -> str:
        path.write_text(text, newline="")
        uri = path.as_uri()
        self.open_models[uri], self.versions[uri] = TextModel(text, self.encoding), 1
        self.client.open(uri, text)
        return uri

    def edit(self, uri: str, edits: list[dict]) -> None:
        """Apply ``TextEdit``s to an open document and tell the server, as an editor does."""
        model = self.open_models[uri]
        changes = [{"range": e["range"], "text": e["newText"]} for e in
                   sorted(edits, key=lambda e: (e["range"]["start"]["line"], e["range"]["start"]["character"]),
                          reverse=True)]
        model.apply_edits(edits)
        self.versions[uri] += 1
        self.client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": self.versions[uri]},
                                                      "contentChanges": changes})

    def apply_workspace_edit(self, params: dict) -> dict:
        for change in params["edit"]["documentChanges"]:
            if change.get("kind") == "create":
                path = Path(change["uri"].removeprefix("file://"))
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
                continue
            uri = change["textDocument"]["uri"]
            if uri in self.open_models:
                self.edit(uri, change["edits"])
            else:
                path = Path(uri.removeprefix("file://"))
                model = TextModel(read_exactly(path), self.encoding)
                model.apply_edits(change["edits"])
                path.write_text(model.text, newline="")
        return {"applied": True}

    def assert_in_sync(self, uri: str) -> None:
        held = self.client.server_text(uri)
        assert (held["text"], held["version"]) == (self.open_models[uri].text, self.versions[uri])


@pytest.fixture(scope="module")
def model():
    scripted = ScriptedModel()
    yield scripted
    scripted.close()


@pytest.fixture(scope="module", params=sorted(ENCODINGS))
def editor(request, model, tokenizer_dir, tmp_path_factory):
    declared, encoding = ENCODINGS[request.param]
    workspace = tmp_path_factory.mktemp(f"workspace-{request.param}")
    client = StdioClient()
    capabilities = {
        "window": {"workDoneProgress": False},
        "workspace": {"applyEdit": True, "workspaceEdit": {"documentChanges": True, "resourceOperations": ["create"]}},
        "textDocument": {"inlineCompletion": {}, "codeAction": {}},
    }
    if declared is not None:
        capabilities["general"] = {"positionEncodings": declared}
    result = client.initialize(capabilities, {
        "model": "m", "tokenizer": str(tokenizer_dir), "localFilesOnly": True, "backend": "openai", "url": model.url,
        "maxRetries": 0, "contextEnabled": False, "maxNewTokens": 32, "instructMaxNewTokens": 64, "debounceMs": 0},
        root_uri=workspace.as_uri())
    assert result["capabilities"]["positionEncoding"] == encoding
    editor = Editor(client, encoding)
    editor.workspace = workspace
    yield editor
    client.close()
    assert not client.handler_errors


def cursor_in(model: TextModel, marked: str) -> tuple[str, dict]:
    """The text without its ``║`` and the cursor's position in the model's encoding."""
    offset = marked.index("║")
    model.text = marked.replace("║", "")
    return model.text, model.position(offset)


@pytest.mark.parametrize("marked, raw, accepted", [
    # the closer an editor auto-inserted is replaced, not doubled
    ('tag = "𝔘😀é"\nprint("𝔘😀é", ║)\n', "tag)", 'tag = "𝔘😀é"\nprint("𝔘😀é", tag)\n'),
    ('s = "𝔘" + ║\nt = 1\n', '"😀é"', 's = "𝔘" + "😀é"\nt = 1\n'),
    # a whole function typed into an auto-closed header: its closers replaced, its body kept
    ('x = "𝔘"\ndef area(║):\n', 'w, h):\n    return w * h  # 😀é\n\n\ndef other():\n    pass\n',
     'x = "𝔘"\ndef area(w, h):\n    return w * h  # 😀é\n'),
])
def test_an_accepted_inline_completion_lands_where_the_server_meant(editor, model, marked, raw, accepted):
    path = editor.workspace / f"inline{len(editor.open_models)}.py"
    text = marked.replace("║", "")
    uri = editor.open(path, text)
    _, cursor = cursor_in(TextModel("", editor.encoding), marked)
    model.reply = raw
    result = editor.client.request("textDocument/inlineCompletion", {
        "textDocument": {"uri": uri}, "position": cursor, "context": {"triggerKind": 1}})
    [item] = result["items"]
    assert item["range"]["start"] == cursor
    editor.edit(uri, [{"range": item["range"], "newText": item["insertText"]}])
    assert editor.open_models[uri].text == accepted
    editor.assert_in_sync(uri)


def test_a_code_action_range_selects_the_function(editor):
    text = 'X = "𝔘😀"\n\n\ndef mark(s):\n    return s + "😀é𝔘"\n'
    uri = editor.open(editor.workspace / "mark.py", text)
    position = editor.open_models[uri].position(text.index("def") + 5)
    actions = editor.client.request("textDocument/codeAction", {
        "textDocument": {"uri": uri}, "range": {"start": position, "end": position}, "context": {"diagnostics": []}})
    explain = next(a for a in actions if a["command"]["command"] == "codeLlama.explain")
    rng = explain["command"]["arguments"][1]
    model = editor.open_models[uri]
    selected = text[model.offset(rng["start"]["line"], rng["start"]["character"]):
                    model.offset(rng["end"]["line"], rng["end"]["character"])]
    assert selected == 'def mark(s):\n    return s + "😀é𝔘"'


def test_a_regenerated_docstring_replaces_the_old_one_exactly(editor, model):
    text = 'def greet(name):  # 𝔘😀\n    """Old 𝔘😀é doc."""\n    return "héllo 𝔘" + name\n'
    uri = editor.open(editor.workspace / "greet.py", text)
    model.reply = "Greets 𝔘 warmly."
    cursor = {"line": 0, "character": 4}
    result = editor.client.request("workspace/executeCommand", {
        "command": "codeLlama.generateDocstring",
        "arguments": [uri, {"start": cursor, "end": cursor}, {"replace": True}]})
    assert result["applied"], result
    new = editor.open_models[uri].text
    function = ast.parse(new).body[0]
    assert ast.get_docstring(function) == "Greets 𝔘 warmly."
    assert new.splitlines()[0] == text.splitlines()[0] and new.splitlines()[-1] == text.splitlines()[-1]
    assert len(new.splitlines()) == len(text.splitlines())
    editor.assert_in_sync(uri)


def test_tests_appended_to_an_existing_file_go_at_its_end(editor, model):
    uri = editor.open(editor.workspace / "shout.py", 'def shout(s):\n    return s.upper() + "😀"\n')
    existing = editor.workspace / "tests" / "test_shout.py"
    existing.parent.mkdir(exist_ok=True)
    original = 'from shout import shout\n\n\ndef test_empty():\n    assert shout("") == "😀"  # 𝔘é'
    existing.write_text(original, newline="")
    model.reply = '```python\nfrom shout import shout\n\n\ndef test_word():\n    assert shout("a") == "A😀"\n```'
    cursor = {"line": 0, "character": 4}
    result = editor.client.request("workspace/executeCommand", {
        "command": "codeLlama.generateTests", "arguments": [uri, {"start": cursor, "end": cursor}]})
    assert result["applied"], result
    extended = read_exactly(existing)
    assert extended.startswith(original)
    names = [node.name for node in ast.parse(extended).body if isinstance(node, ast.FunctionDef)]
    assert names == ["test_empty", "test_word"]


def test_the_completion_fallback_replaces_the_auto_closed_closer(model, tokenizer_dir, tmp_path):
    """A client without inline completions gets a completion item whose textEdit covers the
    closer the editor auto-inserted."""
    client = StdioClient()
    try:
        client.initialize({"textDocument": {"completion": {}}}, {
            "model": "m", "tokenizer": str(tokenizer_dir), "localFilesOnly": True, "backend": "openai",
            "url": model.url, "maxRetries": 0, "contextEnabled": False, "maxNewTokens": 32, "debounceMs": 0},
            root_uri=tmp_path.as_uri())
        marked = 'size = "𝔘😀"\nprint(len(║))\n'
        text_model = TextModel("", "utf-16")
        text, cursor = cursor_in(text_model, marked)
        uri = (tmp_path / "fallback.py").as_uri()
        client.open(uri, text)
        model.reply = "size))"
        result = client.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": cursor})
        [item] = result["items"]
        edit = item["textEdit"]
        assert edit["range"]["start"] == cursor and edit["newText"] == "size))"
        text_model.apply_edits([edit])
        assert text_model.text == 'size = "𝔘😀"\nprint(len(size))\n'
    finally:
        client.close()
    assert not client.handler_errors
