"""Golden cases for what explain / docstring / tests work on: the definition at a cursor.

Each file under ``golden/targets/`` is one language; ``golden/targets/README.md`` describes the
format. The expectations are written by hand, as what a user who put the cursor there expects:
there is deliberately no mode that rewrites them from the code's output.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest
from scripted import ScriptedBackend, scripted_runtime

from code_llama_ls.actions.service import ActionService, target_for
from code_llama_ls.actions.targets import parse, target_at
from code_llama_ls.documents import Document
from code_llama_ls.settings import Settings

GOLDEN = Path(__file__).parent / "golden" / "targets"
CURSOR = "║"


@dataclass(frozen=True)
class Case:
    language: str
    title: str
    text: str
    offset: int
    expect: str  # "kind name" or "none"

    def __str__(self) -> str:
        return f"{self.language}: {self.title} @{self.offset}"


def parse_cases(language: str, golden: str) -> list[Case]:
    """The cases of one file: text before the first ``===`` is its header; a snippet with N
    cursors is N cases, expected in the order the cursors appear."""
    cases = []
    for block in golden.split("\n=== ")[1:]:
        title, _, rest = block.partition("\n")
        source, _, expected = rest.partition("\n--- expect\n")
        marked = source.rstrip("\n") + "\n"
        expects = [line.strip() for line in expected.splitlines() if line.strip()]
        pieces = marked.split(CURSOR)
        assert len(pieces) - 1 == len(expects) > 0, f"{language}: {title}: cursors and expectations differ"
        text = "".join(pieces)
        offsets = [len("".join(pieces[:i + 1])) for i in range(len(expects))]
        cases += [Case(language, title, text, offset, expect) for offset, expect in zip(offsets, expects)]
    return cases


def all_cases() -> list[Case]:
    return [case for path in sorted(GOLDEN.glob("*.txt")) for case in parse_cases(path.stem, path.read_text())]


CASES = all_cases()


def described(target) -> str:
    return "none" if target is None else f"{target.kind} {target.name}"


@pytest.mark.parametrize("case", CASES, ids=str)
def test_target_at_cursor(case):
    tree = parse(case.language, case.text)
    assert tree is not None and not tree.root_node.has_error, "the snippet must parse cleanly"
    assert described(target_at(case.language, case.text, tree, case.offset, case.offset)) == case.expect


@pytest.mark.parametrize("case", CASES, ids=str)
def test_service_finds_the_same_target(case):
    document = Document(uri=f"file:///workspace/snippet.{case.language}", text=case.text, version=1,
                        language_id=case.language)
    assert described(target_for("docstring", document, case.offset, case.offset)) == case.expect


CLASS = "class Calc:\n    def add(self, a, b):\n        return a + b\n\n    def sub(self, a, b):\n        return a - b\n"


@pytest.mark.parametrize("language,text,selected,expect", [
    ("javascript", "export function clamp(x) {\n  return x;\n}\n", "export function clamp(x) {\n  return x;\n}\n",
     "function clamp"),
    ("rust", "#[inline]\nfn one() -> i32 {\n    1\n}\n", "#[inline]\nfn one() -> i32 {\n    1\n}", "function one"),
    ("python", CLASS, "    def add(self, a, b):\n        return a + b\n", "method add"),
    ("python", CLASS, "return a + b\n\n    def sub", "class Calc"),
    ("python", "import os\n\nprint(os.sep)\n", "print(os.sep)", "none"),
], ids=["whole exported function", "attribute and fn", "whole lines of a method", "two methods", "top-level code"])
def test_selection(language, text, selected, expect):
    start = text.index(selected)
    end = start + len(selected)
    assert described(target_at(language, text, parse(language, text), start, end)) == expect


def test_every_language_has_enough_cases():
    counts = {path.stem: len(parse_cases(path.stem, path.read_text())) for path in GOLDEN.glob("*.txt")}
    assert {"python", "javascript", "typescript", "java", "rust", "go", "c", "cpp"} <= counts.keys()
    assert all(count >= 8 for count in counts.values()), counts


def test_docstring_from_the_export_keyword_lands_above_the_export():
    text = "export function clamp(x, lo, hi) {\n  return Math.min(Math.max(x, lo), hi);\n}\n"
    document = Document(uri="file:///workspace/src/clamp.js", text=text, version=2, language_id="javascript")
    runtime = scripted_runtime(ScriptedBackend("Clamp x between lo and hi."))

    async def get():
        return runtime

    service = ActionService(get, lambda: Settings(), None, lambda: [Path("/workspace")], lambda path: None)
    result = asyncio.run(service.run("docstring", document, 2, 2))
    assert result.edit.files[0].new_text() == "/**\n * Clamp x between lo and hi.\n */\n" + text
