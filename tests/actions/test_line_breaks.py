"""Every edit an action makes speaks the line break of the file it edits: a CRLF file stays CRLF
(docstrings, extended test files, Rust's in-file tests), as the ActionEdit's text and as the
WorkspaceEdit the server sends; a new file gets ``\\n``."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from cases import CASES, DOC_ANSWER
from lsprotocol import types
from scripted import ScriptedBackend, scripted_runtime

from code_llama_ls.actions.edits import FileChange, TextChange
from code_llama_ls.lsp.actions import ActionsLsp
from code_llama_ls.actions.service import ActionService
from code_llama_ls.documents import Document, DocumentStore
from code_llama_ls.settings import Settings

ROOT = Path("/workspace")
BARE_LF = re.compile(r"(?<!\r)\n")


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


def run(kind: str, language: str, files: dict | None = None, answer: str | None = None):
    rel, text, needle, tests_answer, _ = CASES[language]
    document = Document(uri=(ROOT / rel).as_uri(), text=crlf(text), version=2, language_id=language)
    runtime = scripted_runtime(ScriptedBackend(answer or (DOC_ANSWER if kind == "docstring" else tests_answer)))

    async def get():
        return runtime

    service = ActionService(get, lambda: Settings(), None, lambda: [ROOT], lambda path: (files or {}).get(path))
    offset = document.text.index(needle) + 2
    return asyncio.run(service.run(kind, document, offset, offset)).edit


def sent_texts(edit) -> list[str]:
    """The new texts of the WorkspaceEdit the server would send for ``edit``."""
    lsp = ActionsLsp(SimpleNamespace(position_encoding="utf-16", documents=DocumentStore()), None)
    changes = lsp.workspace_edit(edit).document_changes
    return [e.new_text for c in changes if isinstance(c, types.TextDocumentEdit) for e in c.edits]


@pytest.mark.parametrize("language", sorted(CASES))
def test_a_docstring_in_a_crlf_file_is_crlf(language):
    edit = run("docstring", language)
    [file] = edit.files
    assert "\r\n" in file.changes[0].text
    assert not BARE_LF.search(file.new_text()), file.new_text()
    assert not any(BARE_LF.search(text) for text in sent_texts(edit))


@pytest.mark.parametrize("language", [lang for lang in sorted(CASES) if CASES[lang][4] is not None])
def test_an_extended_crlf_test_file_stays_crlf(language):
    target = run("tests", language).files[0].path
    edit = run("tests", language, {target: crlf(CASES[language][4])})
    [file] = edit.files
    assert not file.creates
    assert not BARE_LF.search(file.new_text()), file.new_text()
    assert not any(BARE_LF.search(text) for text in sent_texts(edit))


def test_rust_tests_in_a_crlf_file_are_crlf():
    [file] = run("tests", "rust").files
    assert file.original is not None and not BARE_LF.search(file.new_text())


def test_a_created_file_and_an_lf_file_get_lf():
    created = FileChange(ROOT / "new.py", None, [TextChange(0, 0, "a\r\nb\n")])
    assert created.new_text() == "a\nb\n"
    lf = FileChange(ROOT / "lf.py", "x = 1\ny = 2\n", [TextChange(6, 6, "z = 3\r\n")])
    assert lf.new_text() == "x = 1\nz = 3\ny = 2\n"


def test_the_break_is_the_one_of_the_line_the_change_starts_on():
    mixed = "a = 1\r\nb = 2\nc = 3"
    assert FileChange(ROOT / "m.py", mixed, [TextChange(0, 0, "x\n")]).new_text().startswith("x\r\na = 1")
    assert FileChange(ROOT / "m.py", mixed, [TextChange(7, 7, "x\n")]).new_text() == "a = 1\r\nx\nb = 2\nc = 3"
    # the last line has no break of its own: the file's first one
    assert FileChange(ROOT / "m.py", mixed, [TextChange(19, 19, "\nd")]).new_text().endswith("c = 3\r\nd")
