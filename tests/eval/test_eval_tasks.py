"""``eval`` task cutting on a small made-up repository: no model."""

from __future__ import annotations

from pathlib import Path

import pytest

from code_llama_ls.context.privacy import IgnoreRules
from code_llama_ls.eval.tasks import KINDS, MAX_FILE_CHARS, SourceFile, cut_tasks, source_files

UTIL = '''"""Helpers — shared."""


def add(a, b):
    return a + b


def scale(value, factor=2):
    result = value * factor
    if result > 100:
        result = 100
    return result
'''
APP = '''from pkg.util import add, scale


def local(x):
    return x


def total(items):
    acc = 0
    for item in items:
        acc = add(acc, item)
        acc = local(acc)
    return scale(acc, 3)
'''


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "util.py").write_text(UTIL)
    (tmp_path / "pkg" / "app.py").write_text(APP)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_app.py").write_text("def test_total():\n    assert total([1]) == 3\n")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "gen.py").write_text("x = 1\n")
    (tmp_path / ".gitignore").write_text("build/\n")
    (tmp_path / ".env").write_text("TOKEN=1\n")
    (tmp_path / "huge.py").write_text("x = 1\n" * (MAX_FILE_CHARS // 6 + 1))
    (tmp_path / "latin1.py").write_bytes(b"s = '\xe9'\n")
    (tmp_path / "notes.txt").write_text("plain text\n")
    return tmp_path


def files_of(root: Path, include_tests: bool = False) -> list[SourceFile]:
    return source_files(root, IgnoreRules([root]), include_tests)


def test_source_files_skip_ignored_tests_huge_and_non_utf8(repository: Path):
    assert [f.path for f in files_of(repository)] == ["pkg/app.py", "pkg/util.py"]
    assert "tests/test_app.py" in [f.path for f in files_of(repository, include_tests=True)]


def test_each_kind_is_cut_with_the_target_removed_and_the_cursor_in_place(repository: Path):
    tasks = cut_tasks(files_of(repository), seed=0, limit=100)
    assert {t.kind for t in tasks} == set(KINDS)
    for task in tasks:
        assert task.document == task.text[:task.cursor] + task.text[task.end:]
        assert task.document[:task.cursor] + task.target + task.document[task.cursor:] == task.text
        assert task.target.strip()
    line = next(t for t in tasks if t.kind == "line" and t.target == "acc = add(acc, item)")
    assert line.document[:line.cursor].endswith("\n        ") and line.document[line.cursor:].startswith("\n")
    block = next(t for t in tasks if t.kind == "block" and t.text[:t.cursor].endswith("if result > 100:"))
    assert block.target == "\n        result = 100"
    assert block.document[block.cursor:].startswith("\n    return result")


def test_call_args_only_for_functions_of_another_file(repository: Path):
    tasks = [t for t in cut_tasks(files_of(repository), seed=0, limit=100) if t.kind == "call_args"]
    assert sorted((t.path, t.target) for t in tasks) == [("pkg/app.py", "acc, 3"), ("pkg/app.py", "acc, item")]
    for task in tasks:  # the auto-closed ")" stays after the cursor; the "(" before it
        assert task.document[task.cursor - 1] == "(" and task.document[task.cursor] == ")"


def test_a_block_cursor_after_the_first_body_line():
    text = "def f(x):\n    y = x\n    z = y\n    return z\n"
    cursors = {t.cursor for seed in range(20)
               for t in cut_tasks([SourceFile("f.py", "python", text)], seed, 100) if t.kind == "block"}
    header_end, first_line_end = text.index(":") + 1, text.index("y = x") + len("y = x")
    assert cursors == {header_end, first_line_end}


def test_deterministic_for_a_seed_and_balanced_across_kinds(repository: Path):
    files = files_of(repository)
    first = cut_tasks(files, seed=3, limit=6)
    assert [t.id for t in first] == [t.id for t in cut_tasks(files, seed=3, limit=6)]
    assert [t.kind for t in first] == list(KINDS) * 2
    others = [cut_tasks(files, seed=seed, limit=6) for seed in range(4, 8)]
    assert any([t.id for t in other] != [t.id for t in first] for other in others)


def test_a_short_kind_leaves_its_share_to_the_others(repository: Path):
    tasks = cut_tasks(files_of(repository), seed=0, limit=40)
    counts = {kind: sum(t.kind == kind for t in tasks) for kind in KINDS}
    assert counts["call_args"] == 2 and sum(counts.values()) == len(tasks) > 6


def test_lines_in_comments_and_strings_are_not_cut():
    text = 'x = 1\n# a comment here\ns = """\ninside the string\n"""\n'
    targets = {t.target for t in cut_tasks([SourceFile("c.py", "python", text)], 0, 100) if t.kind == "line"}
    assert targets == {"x = 1", 's = """'}


def test_non_ascii_offsets_are_string_offsets():
    text = 'def g():\n    s = "é—ü"; return f(s, "ö")\n'
    files = [SourceFile("a.py", "python", text), SourceFile("b.py", "python", "def f(a, b):\n    return a\n")]
    call = next(t for t in cut_tasks(files, 0, 100) if t.kind == "call_args")
    assert call.target == 's, "ö"'


def test_languages_restrict_where_tasks_come_from(repository: Path):
    (repository / "web.js").write_text("function go(a) {\n  return a + 1;\n}\n")
    files = files_of(repository)
    only_js = cut_tasks(files, 0, 100, {"javascript"})
    assert only_js and {(t.path, t.kind) for t in only_js} == {("web.js", "line")}
