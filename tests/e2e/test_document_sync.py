"""The server's copy of a document stays the client's, on every position-encoding negotiation path.

Random edit streams (hypothesis) go to the real stdio server; after every ``didChange`` the
server's copy (``codeLlama/documentText``) must equal the test's own client model
(``sync_client.TextModel``). Texts mix CRLF, lone CR, surrogate pairs, combining marks, zero-width
joiners, tabs and very long lines; ranges end past their line, fall inside surrogate pairs and
line breaks, join lines, address the line after the last; some changes replace the whole text.

By default the streams are derandomised and sized for CI (60 per path);
``CODE_LLAMA_LS_SYNC_EXAMPLES=N`` runs N random ones per path instead (a soak). Counts go to
``test-artifacts/document-sync.json``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sync_client import ServerError, StdioClient, TextModel

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
OPTIONS = {"model": "/nonexistent/code-llama-ls-sync-test", "localFilesOnly": True, "contextEnabled": False}

# name: (general capabilities the client sends, or None for no `general` at all; the encoding the
# server must choose)
PATHS = {
    "undeclared": (None, "utf-16"),
    "no-list": ({}, "utf-16"),
    "empty-list": ({"positionEncodings": []}, "utf-16"),
    "unknown-names": ({"positionEncodings": ["utf-7", "ucs-2"]}, "utf-16"),
    "utf-8": ({"positionEncodings": ["utf-8"]}, "utf-8"),
    "utf-16": ({"positionEncodings": ["utf-16"]}, "utf-16"),
    "utf-32": ({"positionEncodings": ["utf-32"]}, "utf-32"),
    "utf-32-first": ({"positionEncodings": ["utf-32", "utf-16", "utf-8"]}, "utf-32"),
    "unknown-then-utf-8": ({"positionEncodings": ["latin-1", "utf-8", "utf-16"]}, "utf-8"),
}

SOAK_EXAMPLES = int(os.environ.get("CODE_LLAMA_LS_SYNC_EXAMPLES", "0"))
FUZZ = settings(derandomize=not SOAK_EXAMPLES, max_examples=SOAK_EXAMPLES or 60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

ATOMS = ["a", "b", "def", " ", "  ", "\t", "\n", "\n", "\r\n", "\r\n", "\r", "𝔘", "😀", "é", "e\u0301", "\u200d",
         "👩\u200d💻", "中", "\u00a0", "x" * 700]
texts = st.lists(st.sampled_from(ATOMS), max_size=12).map("".join)

COUNTS: Counter = Counter()


def capabilities(general: dict | None) -> dict:
    caps: dict = {"textDocument": {"synchronization": {"dynamicRegistration": False}}}
    if general is not None:
        caps["general"] = general
    return caps


@pytest.fixture(scope="module", params=sorted(PATHS))
def negotiated(request):
    general, expected = PATHS[request.param]
    client = StdioClient()
    result = client.initialize(capabilities(general), OPTIONS)
    assert result["capabilities"]["positionEncoding"] == expected
    assert result["capabilities"]["textDocumentSync"]["change"] == 2  # incremental
    COUNTS[f"path {request.param}"] += 0
    yield request.param, client, expected
    client.close()


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "document-sync.json").write_text(json.dumps(dict(COUNTS), indent=1, sort_keys=True))


def draw_change(data, model: TextModel) -> dict:
    """A content change addressed in the client's encoding, often at awkward places."""
    if data.draw(st.integers(0, 9), label="full") == 0:
        return {"text": data.draw(texts, label="full text")}
    lines = len(model.line_spans())
    start_line = data.draw(st.integers(0, lines), label="start line")  # `lines`: the line after the last
    start_units = model.line_units(start_line) if start_line < lines else 0
    start_column = data.draw(st.integers(0, start_units + 2), label="start column")
    end_line = data.draw(st.integers(start_line, min(lines, start_line + 2)), label="end line")
    end_units = model.line_units(end_line) if end_line < lines else 0
    low = start_column if end_line == start_line else 0
    end_column = data.draw(st.integers(low, max(low, end_units) + 2), label="end column")
    return {"range": {"start": {"line": start_line, "character": start_column},
                      "end": {"line": end_line, "character": end_column}},
            "text": data.draw(texts, label="inserted")}


def change_document(client: StdioClient, uri: str, version: int, changes: list[dict]) -> None:
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                             "contentChanges": changes})


def assert_in_sync(client: StdioClient, uri: str, version: int, model: TextModel) -> None:
    held = client.server_text(uri)
    assert held["version"] == version
    assert held["text"] == model.text, "the server's copy drifted from the client's"


@given(data=st.data())
@FUZZ
def test_random_edit_streams_keep_the_copies_equal(negotiated, data):
    name, client, encoding = negotiated
    COUNTS["examples"] += 1
    COUNTS[f"path {name}"] += 1
    uri = f"file:///sync/{name}/doc{COUNTS['examples']}.py"
    model = TextModel(data.draw(texts, label="opened text"), encoding)
    client.open(uri, model.text)
    version = 1
    try:
        assert_in_sync(client, uri, version, model)
        for _ in range(data.draw(st.integers(1, 6), label="batches")):
            changes = []
            for _ in range(data.draw(st.integers(1, 4), label="changes")):  # each addresses the text after the last
                changes.append(draw_change(data, model))
                model.apply(changes[-1])
            version += 1
            change_document(client, uri, version, changes)
            COUNTS["edits"] += len(changes)
            COUNTS["batches"] += 1
            assert_in_sync(client, uri, version, model)
    finally:
        client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


def client_for(path: str) -> tuple[StdioClient, str]:
    general, expected = PATHS[path]
    client = StdioClient()
    assert client.initialize(capabilities(general), OPTIONS)["capabilities"]["positionEncoding"] == expected
    return client, expected


def rng(l1: int, c1: int, l2: int, c2: int) -> dict:
    return {"start": {"line": l1, "character": c1}, "end": {"line": l2, "character": c2}}


# Written by hand: (path, opened text, changes, the text every client holds afterwards).
REGRESSIONS = [
    # The reported bug: no encodings declared means UTF-16, and 𝔫 is UTF-16 columns 3-5.
    ("undeclared", "x𝔘𝔫𝔦y", [{"range": rng(0, 3, 0, 5), "text": ""}], "x𝔘𝔦y"),
    # Shrunk by hypothesis from the same bug: a whole-text change, then an edit after an astral character.
    ("empty-list", "", [{"text": "𝔘"}, {"range": rng(0, 2, 0, 2), "text": "a"}], "𝔘a"),
    # A column inside a surrogate pair means the start of that character.
    ("utf-16", "a😀b", [{"range": rng(0, 2, 0, 2), "text": "X"}], "aX😀b"),
    # ... and inside a character's UTF-8 bytes likewise.
    ("utf-8", "é!", [{"range": rng(0, 1, 0, 1), "text": "X"}], "Xé!"),
    # A column past the line's end, on a CRLF line, means the start of the line break.
    ("utf-32", "ab\r\ncd", [{"range": rng(0, 7, 0, 9), "text": "X"}], "abX\r\ncd"),
    # A "\n" typed after a lone CR makes one CRLF; deleting it joins the lines.
    ("utf-16", "a\rb", [{"range": rng(1, 0, 1, 0), "text": "\n"}, {"range": rng(0, 1, 1, 0), "text": ""}], "ab"),
    # The line after the last addresses the end of the document.
    ("undeclared", "ab\n", [{"range": rng(1, 0, 2, 5), "text": "Z"}, {"range": rng(9, 0, 9, 0), "text": "!"}],
     "ab\nZ!"),
    # Combining marks and zero-width joiners are characters of their own in every encoding.
    ("utf-8", "e\u0301👩\u200d💻", [{"range": rng(0, 1, 0, 3), "text": ""}, {"range": rng(0, 5, 0, 8), "text": "-"}],
     "e👩-💻"),
]


@pytest.mark.parametrize("path, opened, changes, expected", REGRESSIONS)
def test_fixed_edit_sequences(path, opened, changes, expected):
    client, encoding = client_for(path)
    try:
        model = TextModel(opened, encoding)
        client.open("file:///sync/regression.py", opened)
        for change in changes:
            model.apply(change)
        change_document(client, "file:///sync/regression.py", 2, changes)
        assert model.text == expected, "the test's client model disagrees with the hand-written answer"
        assert client.server_text("file:///sync/regression.py") == {
            "uri": "file:///sync/regression.py", "version": 2, "languageId": "python", "text": expected}
    finally:
        client.close()


def test_document_text_of_a_document_that_is_not_open_is_an_error():
    client, _ = client_for("utf-16")
    try:
        with pytest.raises(ServerError, match="is not open"):
            client.server_text("file:///sync/never-opened.py")
        with pytest.raises(ServerError, match="expects"):
            client.request("codeLlama/documentText", {"uri": "file:///x.py"})
    finally:
        client.close()
