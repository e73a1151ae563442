"""completion_scope: multi-line only at an empty block body, and only at a real opener token."""

from __future__ import annotations

import pytest

from code_llama_ls.context.languages import grammar
from code_llama_ls.context.syntax import completion_scope
from code_llama_ls.documents import Document

CURSOR = "|"


def scope(marked: str, uri: str = "file:///w/a.py", language_id: str = "") -> str:
    offset = marked.index(CURSOR)
    document = Document(uri=uri, text=marked.replace(CURSOR, "", 1), version=0, language_id=language_id)
    return completion_scope(document, offset)


# Blank lines at module level are left out: whether they are multi-line is a policy of its own.
@pytest.mark.parametrize("marked, expected", [
    # Empty block bodies: multi-line.
    ("def f():\n    |", "block"),
    ("def f():\n    |\n", "block"),
    ("def f():\r\n    |\r\n", "block"),
    ("def f():\r    |", "block"),
    ("class A:\n    |\n\nx = 1\n", "block"),
    ("if x:\n    |\nelse:\n    pass\n", "block"),
    ("def f():\n    |\n\ndef g():\n    return 1\n", "block"),
    ("d = {\n    |\n}\n", "block"),
    ("def f(é='😀'):\n    |", "block"),
    ("def f():  # todo: write it\n    |", "block"),  # a trailing comment is not code
    ("def f():\n    # TODO\n    |", "block"),
    # Blocks that already have a body: one line.
    ("def f():\n    |\n    return 1\n", "line"),
    ("class A:\n    |\n    def g(self):\n        pass\n", "line"),
    ("d = {\n    |\n    'a': 1,\n}\n", "line"),
    # Mid-line or code before the cursor: one line.
    ("x = foo(|)\n", "line"),
    ("def f():\n    return |", "line"),
    ("def f(|):\n", "line"),
    # A blank line in a block after ordinary code: one line.
    ("def f():\n    x = 1\n    |", "line"),
    ("def f():\n    x = {'a': 1}['a']\n    |", "line"),
    # ':' and '{' that are not opener tokens: in strings and comments.
    ("def f():\n    s = '''\n    key:\n    |\n    '''\n", "line"),
    ("def f():\n    s = '''{\n    |\n    }'''\n", "line"),
    ("def f():\n    x = 1  # note:\n    |", "line"),
    ("def f():\n    x = 1  # {\n    |\n    }\n", "line"),
    ("def f():\n    s = 'a:'\n    |", "line"),
])
def test_python_scope(marked: str, expected: str):
    assert scope(marked) == expected


def test_python_grammar_is_used():
    assert Document(uri="file:///w/a.py", text="x", version=0).tree is not None


JS_CASES = [
    ("function f() {\n  |\n}\n", "block"),
    ("function f() {\n  |", "block"),
    ("function f() {\n  |\n  return 1;\n}\n", "line"),
    ("f(|);\n", "line"),
]


@pytest.mark.parametrize("marked, expected", JS_CASES)
def test_javascript_scope(marked: str, expected: str):
    """Same answers with the JavaScript grammar or, where its wheel is missing, as plain text."""
    assert scope(marked, uri="file:///w/a.js") == expected


def test_javascript_braces_in_strings():
    marked = "const s = `{\n|\n}`;\n"
    if grammar("javascript") is None:
        # Plain text: nothing tells a string's '{' from a real one, so the text is trusted.
        assert scope(marked, uri="file:///w/a.js") == "block"
    else:
        assert scope(marked, uri="file:///w/a.js") == "line"


def test_plain_text_trusts_the_text():
    assert scope("section:\n|", uri="file:///w/notes.cbl", language_id="cobol") == "block"
    assert scope("# note:\n|", uri="file:///w/notes.txt") == "block"  # no grammar: '#' is not a comment
    assert scope("text\n|", uri="file:///w/notes.txt") == "line"
