"""Documents: incremental edits, position encodings, the tree-sitter tree, language detection."""

from __future__ import annotations

import random

import pytest

from code_llama_ls import documents as documents_module
from code_llama_ls.languages import PLAIN_TEXT, grammar, language_name
from code_llama_ls.documents import Document, DocumentError, DocumentStore, Position, PositionError

ENCODINGS = ("utf-8", "utf-16", "utf-32")


# -- an independent reference for LSP lines and positions ------------------------------------


def reference_lines(text: str) -> list[tuple[int, int]]:
    """(start, end-before-break) of every LSP line; breaks are \\r\\n, \\r and \\n."""
    lines, start, i = [], 0, 0
    while i < len(text):
        if text[i] == "\r" and i + 1 < len(text) and text[i + 1] == "\n":
            lines.append((start, i))
            i += 2
            start = i
        elif text[i] in "\r\n":
            lines.append((start, i))
            i += 1
            start = i
        else:
            i += 1
    lines.append((start, len(text)))
    return lines


def units(char: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(char.encode("utf-8"))
    if encoding == "utf-16":
        return len(char.encode("utf-16-le")) // 2
    return 1


def reference_position(text: str, offset: int, encoding: str) -> Position:
    for line, (start, end) in enumerate(reference_lines(text)):
        if start <= offset <= end:
            return Position(line, sum(units(c, encoding) for c in text[start:offset]))
    raise AssertionError(f"offset {offset} is inside a line break")


def reference_offset(text: str, position: Position, encoding: str) -> int:
    """LSP semantics with the clamping used for edits: past the last line → end of text."""
    lines = reference_lines(text)
    if position.line >= len(lines):
        return len(text)
    start, end = lines[position.line]
    count, offset = 0, start
    while offset < end and count < position.character:
        count += units(text[offset], encoding)
        offset += 1
    return offset


# -- randomised incremental edits -------------------------------------------------------------

FRAGMENTS = (
    "def f(x):\n", "    return x\n", "class A:\n    pass\n", "é", "😀", "🐍 = 1", "\r\n", "\r", "\n",
    "x = 'a:b'\n", "# comment é\n", "(", ")", "{", "}", "'''", '"', "\t", "  ", "if x:\r\n    y()\r\n",
    "名前 = 2\n", "", "a", "z = [1, 2,\n     3]\n",
)
START_TEXT = "import os\r\n\r\ndef main():\n    print('héllo 😀')\r    return 0\n"


def random_position(rng: random.Random, text: str, encoding: str) -> tuple[Position, int]:
    """A position (sometimes past a line's end or the document's end) and its clamped offset."""
    lines = reference_lines(text)
    roll = rng.random()
    if roll < 0.05:  # a line past the end: edits clamp it to the end of the document
        position = Position(len(lines) + rng.randrange(3), rng.randrange(5))
        return position, len(text)
    line = rng.randrange(len(lines))
    start, end = lines[line]
    offset = rng.randint(start, end)
    position = reference_position(text, offset, encoding)
    if roll < 0.15:  # a character past the end of the line means the end of the line
        position = Position(line, sum(units(c, encoding) for c in text[start:end]) + rng.randint(1, 4))
        offset = end
    return position, offset


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("seed", range(4))
def test_random_incremental_edits_match_the_full_text(seed: int, encoding: str):
    rng = random.Random(seed * 31 + len(encoding))
    document = Document(uri="file:///w/edit.py", text=START_TEXT, version=0, language_id="python")
    expected = START_TEXT
    for step in range(120):
        start_position, a = random_position(rng, expected, encoding)
        end_position, b = random_position(rng, expected, encoding)
        if b < a:
            (start_position, a), (end_position, b) = (end_position, b), (start_position, a)
        if rng.random() < 0.1:
            end_position, b = start_position, a  # pure insertion
        new_text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randrange(3)))
        document.apply_change(new_text, start_position, end_position, encoding)
        expected = expected[:a] + new_text + expected[b:]
        assert document.text == expected, f"step {step}"
        assert [document.line_range(i) for i in range(document.line_count)] == reference_lines(expected), \
            f"step {step}"
        if rng.random() < 0.4 or step == 119:  # otherwise several edits wait for one reparse
            fresh = Document(uri=document.uri, text=expected, version=0, language_id="python")
            assert document.tree is not None and fresh.tree is not None
            assert str(document.tree.root_node) == str(fresh.tree.root_node), f"step {step}"
    # Every line and every position agrees with the reference at the end.
    for line, (start, end) in enumerate(reference_lines(expected)):
        assert document.line_range(line) == (start, end)
        assert document.line_text(line) == expected[start:end]
        for offset in range(start, end + 1):
            position = reference_position(expected, offset, encoding)
            assert document.position_at(offset, encoding) == position
            assert document.offset_at(position, encoding) == offset


def test_many_edits_then_one_parse_match_a_fresh_parse():
    document = Document(uri="file:///w/a.py", text="def f(a):\n    return a\n", version=0)
    assert document.tree is not None
    for i in range(50):  # typing a new function, one character at a time, without parsing
        line = document.line_count - 1
        document.apply_change("def g():\n    pass\n"[i % 18], Position(line, 99), Position(line, 99))
    fresh = Document(uri=document.uri, text=document.text, version=0)
    assert str(document.tree.root_node) == str(fresh.tree.root_node)
    assert "function_definition" in str(document.tree.root_node)


def test_full_text_change_replaces_everything_and_reparses():
    document = Document(uri="file:///w/a.py", text="x = 1\n", version=1, language_id="python")
    document.apply_change("def f():\r\n    return 1\r\n")
    assert document.text == "def f():\r\n    return 1\r\n"
    assert document.line_count == 3
    assert document.line_text(1) == "    return 1"
    assert str(document.tree.root_node) == str(
        Document(uri="file:///w/b.py", text=document.text, version=0, language_id="python").tree.root_node)


@pytest.mark.parametrize("before, start, end, insert, after", [
    ("a\rb", Position(1, 0), Position(1, 0), "\n", "a\r\nb"),  # \r + \n join into one break
    ("a\nb", Position(0, 1), Position(0, 1), "\r", "a\r\nb"),
    ("a\rX\nb", Position(1, 0), Position(1, 1), "", "a\r\nb"),
    ("a\r\nb", Position(0, 1), Position(1, 0), "", "ab"),
    ("a\r\nb", Position(0, 1), Position(1, 0), "\r", "a\rb"),
])
def test_edits_that_join_or_split_line_breaks(before, start, end, insert, after):
    document = Document(uri="file:///w/t.txt", text=before, version=0)
    document.apply_change(insert, start, end)
    assert document.text == after
    assert document.line_count == len(reference_lines(after))
    for line, span in enumerate(reference_lines(after)):
        assert document.line_range(line) == span


# -- position encodings -----------------------------------------------------------------------

TEXT = "é😀b\nx"


@pytest.mark.parametrize("encoding, character, offset", [
    ("utf-16", 0, 0), ("utf-16", 1, 1), ("utf-16", 3, 2), ("utf-16", 4, 3),
    ("utf-8", 2, 1), ("utf-8", 6, 2), ("utf-8", 7, 3),
    ("utf-32", 1, 1), ("utf-32", 2, 2), ("utf-32", 3, 3),
])
def test_offset_and_position_in_each_encoding(encoding, character, offset):
    document = Document(uri="file:///w/u.txt", text=TEXT, version=0)
    assert document.offset_at(Position(0, character), encoding) == offset
    assert document.position_at(offset, encoding) == Position(0, character)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_character_past_the_end_of_a_line_means_its_end(encoding):
    document = Document(uri="file:///w/u.txt", text="é😀b\r\nx", version=0)
    assert document.offset_at(Position(0, 99), encoding) == 3
    assert document.offset_at(Position(1, 99), encoding) == len(document.text)


@pytest.mark.parametrize("position", [Position(-1, 0), Position(0, -1), Position(2, 0), Position(10**6, 0)])
def test_negative_or_past_end_positions_are_errors(position):
    document = Document(uri="file:///w/u.py", text="a\nb", version=0, language_id="python")
    with pytest.raises(PositionError):
        document.offset_at(position)


def test_the_line_after_a_final_line_break_exists():
    document = Document(uri="file:///w/u.py", text="a\n", version=0)
    assert document.line_count == 2
    assert document.offset_at(Position(1, 0)) == 2
    with pytest.raises(PositionError):
        document.offset_at(Position(2, 0))


def test_edit_ranges_past_the_end_are_clamped():
    document = Document(uri="file:///w/c.py", text="x = 1\n", version=0, language_id="python")
    document.apply_change("y = 2\n", Position(5, 3), Position(9, 0))
    assert document.text == "x = 1\ny = 2\n"
    document.apply_change("z", Position(0, 50), Position(0, 60))
    assert document.text == "x = 1z\ny = 2\n"
    # An end before the start deletes nothing.
    document.apply_change("!", Position(1, 3), Position(1, 0))
    assert document.text == "x = 1z\ny =! 2\n"
    fresh = Document(uri="file:///w/d.py", text=document.text, version=0, language_id="python")
    assert str(document.tree.root_node) == str(fresh.tree.root_node)


def test_negative_edit_positions_raise_position_error():
    document = Document(uri="file:///w/c.py", text="x = 1\n", version=0)
    with pytest.raises(PositionError):
        document.apply_change("y", Position(-1, 0), Position(0, 0))
    assert document.text == "x = 1\n"


# -- language detection -----------------------------------------------------------------------


@pytest.mark.parametrize("language_id, uri, expected", [
    ("python", "file:///w/x.txt", "python"),
    ("", "file:///w/x.py", "python"),
    ("", "file:///w/X.PYI", "python"),
    ("cobol", "file:///w/x.py", "python"),  # an unknown languageId falls back to the extension
    ("javascriptreact", "file:///w/x", "javascript"),
    ("", "file:///w/x.tsx", "typescriptreact"),
    ("cobol", "file:///w/x.cbl", PLAIN_TEXT),
    ("", "untitled:Untitled-1", PLAIN_TEXT),
])
def test_language_detection(language_id, uri, expected):
    assert language_name(language_id, uri) == expected
    assert Document(uri=uri, text="x", version=0, language_id=language_id).language == expected


def test_unknown_language_is_plain_text_without_a_tree():
    document = Document(uri="file:///w/x.cbl", text="IDENTIFICATION DIVISION.\n", version=0, language_id="cobol")
    assert document.language == PLAIN_TEXT and document.tree is None
    document.apply_change("PROGRAM-ID. X.\n", Position(1, 0), Position(1, 0))
    assert document.text.endswith("PROGRAM-ID. X.\n") and document.tree is None


def test_python_documents_get_a_tree():
    assert grammar("python") is not None
    document = Document(uri="file:///w/x.py", text="def f():\n    return 1\n", version=0)
    assert document.tree is not None and document.tree.root_node.type == "module"


def test_binary_looking_text_is_kept_and_parsed():
    text = "x = 1\x00\x01\x02\ufffd\n\x00"
    document = Document(uri="file:///w/b.py", text=text, version=0)
    document.apply_change("\x00", Position(1, 1), Position(1, 1))
    assert document.text == text + "\x00"
    assert document.line_count == 2


def test_too_large_documents_are_kept_in_sync_but_not_parsed(monkeypatch):
    monkeypatch.setattr(documents_module, "MAX_DOCUMENT_CHARS", 20)
    document = Document(uri="file:///w/big.py", text="x = 1\n" * 10, version=0)
    assert document.too_large and document.tree is None
    document.apply_change("", Position(0, 0), Position(9, 0))
    assert document.text == "x = 1\n" and not document.too_large
    assert document.tree is not None  # small again: parsed again


def test_store_open_get_close():
    store = DocumentStore()
    with pytest.raises(DocumentError):
        store.get("file:///w/none.py")
    document = store.open("file:///w/a.py", "x", 1, "python")
    assert "file:///w/a.py" in store and store.get("file:///w/a.py") is document
    assert list(store) == [document]
    store.close("file:///w/a.py")
    store.close("file:///w/a.py")  # closing twice is harmless
    assert "file:///w/a.py" not in store
