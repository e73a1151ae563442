"""shape_suggestion's own contract: windows around the cursor, plain text for unknown languages."""

from __future__ import annotations

from code_llama_ls.completion.postprocess import PLAIN_TEXT_NOTE
from code_llama_ls.completion.shape import (
    PREFIX_WINDOW_LINES,
    SUFFIX_WINDOW_LINES,
    shape_outcome,
    shape_suggestion,
    windows,
)


def test_an_unknown_language_is_plain_text_and_says_so():
    outcome = shape_outcome("call(", ")\n", "cobol", "a, b)")
    assert outcome.note == PLAIN_TEXT_NOTE
    assert (outcome.suggestion.text, outcome.suggestion.replace_end) == ("a, b)", 1)
    assert shape_outcome("call(", ")\n", "python", "a, b)").note == ""


def test_windows_begin_and_end_at_top_level_lines():
    functions = "".join(f"def f{n}(a):\n    return [\n        a,\n    ]\n\n\n" for n in range(120))
    before, after = windows(functions + "def g():\n    ", "\n" + functions, "python")
    assert before.startswith("def f") and len(before.split("\n")) <= PREFIX_WINDOW_LINES + 1
    assert after.endswith("\n\n\n") and len(after.split("\n")) <= SUFFIX_WINDOW_LINES + 1
    assert (functions + "def g():\n    ").endswith(before) and ("\n" + functions).startswith(after)


def test_a_window_never_starts_inside_a_module_docstring():
    docstring = '"""A module.\n\n' + "".join(f"Paragraph {n} about the module.\n\n" for n in range(150)) + '"""\n'
    prefix = docstring + "import os\n\n\ndef g():\n    "
    before, _ = windows(prefix, "\n", "python")
    assert before.startswith("import os\n")


def test_a_window_never_starts_inside_a_block_comment():
    comment = "/*\n" + "".join(f"   licence line {n}\n" for n in range(250)) + "*/\n"
    prefix = comment + "int main(void) {\n    "
    before, _ = windows(prefix, "\n}\n", "c")
    assert before.startswith("int main")


def test_a_long_function_cut_by_the_window_is_not_left_open():
    """Past the suffix window the function goes on (its closers are not in the window): a `}`
    written at once closes the cursor's block, which the file already closes — nothing to show."""
    body = "".join(f"    if (x > {n}) {{\n      y += {n};\n    }}\n" for n in range(60))
    prefix = "function f(x) {\n  let y = 0;\n  while (x) {\n    y++;\n    "
    suffix = "\n" + body + "  }\n  return y;\n}\n"
    assert shape_suggestion(prefix, suffix, "javascript", "}\n\n  return") is None


def test_brackets_the_file_leaves_open_may_be_closed():
    """At the end of a file the user is still writing, closing the open call is the answer."""
    assert shape_suggestion("print(total(", "\n", "python", "items))\n") == ("items))", 0)
