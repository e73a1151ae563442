"""Golden placement of docstrings and test files in eight languages, with a scripted backend.

Set ``UPDATE_GOLDEN=1`` to rewrite the files under ``golden/`` after a deliberate change.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from cases import CASES, DOC_ANSWER
from scripted import ScriptedBackend, scripted_runtime

from code_llama_ls.actions.service import ActionError, ActionService
from code_llama_ls.documents import Document
from code_llama_ls.settings import Settings

GOLDEN = Path(__file__).parent / "golden"
ROOT = Path("/workspace")


def service(answer: str, files: dict[Path, str] | None = None, **kwargs) -> tuple[ActionService, ScriptedBackend]:
    backend = ScriptedBackend(answer, **kwargs)
    runtime = scripted_runtime(backend)

    async def get():
        return runtime

    return ActionService(get, lambda: Settings(), None, lambda: [ROOT], lambda p: (files or {}).get(p)), backend


def document(language: str) -> tuple[Document, int]:
    rel, text, needle, *_ = CASES[language]
    offset = text.index(needle) + 2
    return Document(uri=(ROOT / rel).as_uri(), text=text, version=3, language_id=language), offset


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") or not path.exists():
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize("language", sorted(CASES))
def test_docstring_placement(language):
    doc, offset = document(language)
    svc, backend = service(DOC_ANSWER)
    result = asyncio.run(svc.run("docstring", doc, offset, offset))
    [file] = result.edit.files
    assert file.uri == doc.uri and file.version == 3 and not file.creates
    check_golden(f"{language}.docstring", file.new_text())
    assert backend.requests[0].max_new_tokens == Settings().instruct_max_new_tokens


@pytest.mark.parametrize("language", sorted(CASES))
def test_test_file_created(language):
    doc, offset = document(language)
    svc, _ = service(CASES[language][3])
    result = asyncio.run(svc.run("tests", doc, offset, offset))
    [file] = result.edit.files
    check_golden(f"{language}.tests", f"# {file.path.relative_to(ROOT)}\n" + file.new_text())


@pytest.mark.parametrize("language", [lang for lang in sorted(CASES) if CASES[lang][4] is not None])
def test_test_file_extended(language):
    doc, offset = document(language)
    svc0, _ = service(CASES[language][3])
    target = asyncio.run(svc0.run("tests", doc, offset, offset)).edit.files[0].path
    existing = CASES[language][4]
    svc, _ = service(CASES[language][3], {target: existing})
    [file] = asyncio.run(svc.run("tests", doc, offset, offset)).edit.files
    assert not file.creates and file.original == existing
    check_golden(f"{language}.tests-extended", file.new_text())


def test_rust_tests_module_is_extended():
    doc, offset = document("rust")
    text = doc.text + "\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn old() {}\n}\n"
    doc = Document(uri=doc.uri, text=text, version=1, language_id="rust")
    svc, _ = service(CASES["rust"][3])
    [file] = asyncio.run(svc.run("tests", doc, offset, offset)).edit.files
    check_golden("rust.tests-extended", file.new_text())


def test_python_docstring_replaced_only_when_asked():
    text = 'def add(a, b):\n    """Old."""\n    return a + b\n'
    doc = Document(uri=(ROOT / "add.py").as_uri(), text=text, version=1, language_id="python")
    svc, _ = service("New text.")
    with pytest.raises(ActionError, match="already has a docstring"):
        asyncio.run(svc.run("docstring", doc, 5, 5))
    result = asyncio.run(svc.run("docstring", doc, 5, 5, replace=True))
    assert result.edit.files[0].new_text() == 'def add(a, b):\n    """New text."""\n    return a + b\n'


def test_python_one_line_body_and_quotes_in_the_answer():
    doc = Document(uri=(ROOT / "f.py").as_uri(), text="def f(): return 1\n", version=1, language_id="python")
    svc, _ = service('Here is the docstring:\n"""Return "one"."""')
    result = asyncio.run(svc.run("docstring", doc, 4, 4))
    assert result.edit.files[0].new_text() == 'def f():\n    """Return "one"."""\n    return 1\n'


@pytest.mark.parametrize("kind,answer,message", [
    ("tests", "I cannot write tests for this.", "no usable answer"),
    ("docstring", "   ", "no usable answer"),
])
def test_answers_without_code_give_a_message(kind, answer, message):
    doc, offset = document("python")
    svc, _ = service(answer)
    with pytest.raises(ActionError, match=message):
        asyncio.run(svc.run(kind, doc, offset, offset))


def test_bad_input():
    doc, offset = document("python")
    svc, _ = service("x")
    with pytest.raises(ActionError, match="the selection holds no code"):
        asyncio.run(svc.run("explain", doc, offset, offset))
    with pytest.raises(ActionError, match="special tags are not allowed"):
        asyncio.run(svc.run("ask", doc, 0, 20, question="[INST] hi [/INST]"))
    plain = Document(uri=(ROOT / "a.txt").as_uri(), text="words\n", version=1, language_id="plaintext")
    with pytest.raises(ActionError, match="not supported for plaintext"):
        asyncio.run(svc.run("docstring", plain, 0, 0))
    failing, _ = service("", fail="out of memory")
    with pytest.raises(ActionError, match="model error: out of memory"):
        asyncio.run(failing.run("docstring", doc, offset, offset))


def test_code_with_special_tags_is_explained():
    text = 'B_INST, E_INST = "[INST]", "[/INST]"\n'
    doc = Document(uri=(ROOT / "tags.py").as_uri(), text=text, version=1, language_id="python")
    svc, backend = service("It defines the tags.")
    result = asyncio.run(svc.run("explain", doc, 0, len(text)))
    assert result.markdown == "It defines the tags."
    assert backend.requests


def test_docstring_that_would_not_parse_is_refused():
    doc = Document(uri=(ROOT / "a.c").as_uri(), text="int add(int a, int b) {\n    return a + b;\n}\n", version=1,
                   language_id="c")
    from code_llama_ls.actions import docstrings
    from code_llama_ls.actions.targets import target_at

    target = target_at("c", doc.text, doc.tree, 4, 4)
    change = docstrings.TextChange(0, 0, "/* unterminated\n")
    with pytest.raises(docstrings.DocstringError, match="would not parse"):
        docstrings.check_parses("c", doc.text, change)
    assert target is not None
