"""completion_scope: multi-line where the rest of the line is empty or only auto-paired closers."""

from __future__ import annotations

import pytest

from code_llama_ls.completion.span import completion_scope
from code_llama_ls.documents import Document

CURSOR = "|"


def scope(marked: str, uri: str = "file:///w/a.py", language_id: str = "") -> str:
    offset = marked.index(CURSOR)
    document = Document(uri=uri, text=marked.replace(CURSOR, "", 1), version=0, language_id=language_id)
    return completion_scope(document, offset)


@pytest.mark.parametrize("marked, expected", [
    # Nothing after the cursor on its line: multi-line, in an empty or a non-empty block.
    ("def f():\n    |", "block"),
    ("def f():\r\n    |\r\n", "block"),
    ("def f():\r    |", "block"),
    ("def f():\n    |\n    return 1\n", "block"),
    ("def f():\n    x = 1\n    |", "block"),
    ("def f(a):|\n", "block"),  # a header line: the body comes next
    ("for op in o|\n", "block"),
    ("def f():\n    return |", "block"),
    # Only what auto-pairing leaves: closers, quotes, trailing punctuation.
    ("x = foo(|)\n", "block"),
    ("def f(|):\n", "block"),
    ('print("|")\n', "block"),
    ("items[|]\n", "block"),
    # More code after the cursor: this line only.
    ("foo(a|, b)\n", "line"),
    ("x = |y + 1\n", "line"),
    ("def f(|a):\n", "line"),
])
def test_python_scope(marked: str, expected: str):
    assert scope(marked) == expected


@pytest.mark.parametrize("marked, expected", [
    ("function f() {\n  |\n}\n", "block"),
    ("function g() {|}\n", "block"),
    ("f(|);\n", "block"),
    ("f(|a);\n", "line"),
    ("return |this;\n", "line"),
])
def test_javascript_scope(marked: str, expected: str):
    assert scope(marked, uri="file:///w/a.js") == expected


def test_plain_text_uses_the_same_rule():
    assert scope("section:\n|", uri="file:///w/notes.cbl", language_id="cobol") == "block"
    assert scope("text |more\n", uri="file:///w/notes.txt") == "line"
