"""Completion tasks cut from a repository's files, each a file with a target span removed and the
cursor where it was, as an editor would hold it while the user writes that span:

- ``line``: the cursor at the start of a line's code (after its indentation); the target is the
  rest of that line. Lines that start in a comment or a string are left out.
- ``block`` (Python): the cursor at the end of a block's header line (``def``/``for``/``if``/
  ``with``… ending in ``:``) or of its first body line; the target is the rest of the block: the
  lines after the cursor indented more than the header.
- ``call_args`` (Python): a call ``f(...)`` on one line where ``f`` is a top-level function of
  another file of the repository (and nothing of that name is defined in this one): the cursor
  just after ``(``, the target the arguments; the ``)`` stays after the cursor, as an editor's
  auto-closed pair leaves it. This is where context from other files should help.

The files are those the server would read into prompts (not matched by ``.gitignore``,
``.codellamaignore``, the secret deny-list or ``ignorePatterns``), UTF-8 text of at most
``MAX_FILE_CHARS`` characters, in a language with a tree-sitter grammar. Test files are left out
unless asked for: their lines repeat one another (an assert per value), so they would weigh what a
model copies from the lines above over what it makes of the code.

A seed fixes the choice and the order: the same repository and seed give the same tasks. Offsets
are string offsets (code points) as in ``Document``.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

from tree_sitter import Node, Point

from code_llama_ls.context.base import walk
from code_llama_ls.languages import PLAIN_TEXT, language_name
from code_llama_ls.context.privacy import IgnoreRules
from code_llama_ls.documents import Document, Position

KINDS = ("line", "block", "call_args")
MAX_FILE_CHARS = 100_000
"""Larger files (generated tables, vendored bundles) say little about the code a user writes."""
MAX_TARGET_CHARS = {"line": 200, "block": 400, "call_args": 200}
MAX_BLOCK_LINES = 8
"""Longer blocks are beyond what one completion of a few dozen tokens can write."""
PRUNED_FOLDERS = frozenset({"node_modules", "__pycache__", "site-packages", "venv"})
"""Never walked (nor any folder whose name starts with a dot): installed or generated code."""
_LONE_CR = re.compile(r"\r(?!\n)")


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative to the repository root, with "/"
    language: str
    text: str


@dataclass(frozen=True)
class Task:
    """``text`` with ``text[cursor:end]`` (the target) removed, and the cursor at ``cursor``."""

    kind: str
    path: str
    language: str
    text: str
    cursor: int
    end: int

    @property
    def target(self) -> str:
        return self.text[self.cursor:self.end]

    @property
    def document(self) -> str:
        """What the model sees: the file without the target."""
        return self.text[:self.cursor] + self.text[self.end:]

    @property
    def id(self) -> str:
        """Names the task by its content: the same cut of the same file has the same id."""
        content = "\0".join((self.kind, self.path, self.language, str(self.cursor), str(self.end), self.text))
        return hashlib.sha256(content.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def is_test_file(path: str) -> bool:
    parts = path.split("/")
    name = parts[-1]
    stem = name.split(".", 1)[0]
    return (any(part in ("test", "tests", "testing") for part in parts[:-1]) or name == "conftest.py"
            or stem.startswith("test_") or stem.endswith(("_test", "_tests"))
            or ".test." in name or ".spec." in name)


def source_files(root: Path, rules: IgnoreRules, include_tests: bool = False) -> list[SourceFile]:
    """The repository's source files that tasks may be cut from, sorted by path."""
    root = root.resolve()
    found = []
    for folder, folders, names in os.walk(root):
        folders[:] = sorted(f for f in folders if not f.startswith(".") and f not in PRUNED_FOLDERS)
        for name in names:
            path = Path(folder) / name
            relative = path.relative_to(root).as_posix()
            language = language_name(None, name)
            if language == PLAIN_TEXT or (not include_tests and is_test_file(relative)) or rules.is_ignored(path):
                continue
            text = _read_text(path)
            if text is not None:
                found.append(SourceFile(relative, language, text))
    return sorted(found, key=lambda f: f.path)


def _read_text(path: Path) -> str | None:
    """The file's text, or None for one too large, not UTF-8, or binary."""
    try:
        if path.stat().st_size > 4 * MAX_FILE_CHARS:
            return None
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return text if len(text) <= MAX_FILE_CHARS and "\0" not in text else None


class _Parsed:
    """A file with its tree, and the conversions between tree-sitter points and string offsets."""

    def __init__(self, file: SourceFile) -> None:
        self.file = file
        self.document = Document(f"file:///{file.path}", file.text, 0, language_id=file.language)
        self.root = self.document.tree.root_node

    def offset(self, point: Point) -> int:
        return self.document.offset_at(Position(point.row, point.column), "utf-8")

    def point(self, offset: int) -> Point:
        position = self.document.position_at(offset, "utf-8")  # UTF-8 columns are tree-sitter's
        return Point(position.line, position.character)

    def text_of(self, node: Node) -> str:
        return self.file.text[self.offset(node.start_point):self.offset(node.end_point)]

    def line(self, row: int) -> str:
        return self.document.line_text(row)


def cut_tasks(files: Sequence[SourceFile], seed: int, limit: int,
              languages: Collection[str] | None = None) -> list[Task]:
    """Up to ``limit`` tasks, balanced across ``KINDS`` (a kind short of candidates leaves its
    share to the others), in a fixed order for the seed. ``files`` are all the repository's files
    (call_args looks for definitions in every one); tasks come from those in ``languages``."""
    parsed = [_Parsed(f) for f in files if not _LONE_CR.search(f.text)]  # tree-sitter rows end at \n only
    parsed = [p for p in parsed if p.document.tree is not None]
    defined_in = _top_level_functions(parsed)
    pools: dict[str, list[Task]] = {kind: [] for kind in KINDS}
    for source in parsed:
        if languages is not None and source.file.language not in languages:
            continue
        rng = random.Random(f"{seed}:{source.file.path}")
        spans = {"line": _line_spans(source)}
        if source.file.language == "python":
            spans["block"] = _block_spans(source, rng)
            spans["call_args"] = _call_spans(source, _defined_elsewhere(source, defined_in))
        for kind, found in spans.items():
            pools[kind] += [Task(kind, source.file.path, source.file.language, source.file.text, cursor, end)
                            for cursor, end in found if end - cursor <= MAX_TARGET_CHARS[kind]]
    for kind, pool in pools.items():
        random.Random(f"{seed}:{kind}").shuffle(pool)
    interleaved = [task for row in zip_longest(*pools.values()) for task in row if task is not None]
    return interleaved[:limit]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _in_string_or_comment(source: _Parsed, offset: int) -> bool:
    point = source.point(offset)
    node = source.root.descendant_for_point_range(point, point)
    while node is not None:
        if "comment" in node.type or "string" in node.type:
            return True
        node = node.parent
    return False


def _line_spans(source: _Parsed) -> Iterator[tuple[int, int]]:
    document = source.document
    for row in range(document.line_count):
        start, end = document.line_range(row)
        line = document.text[start:end]
        cursor, stop = start + _indent(line), start + len(line.rstrip())
        target = document.text[cursor:stop]
        if any(c.isalnum() for c in target) and not _in_string_or_comment(source, cursor):
            yield cursor, stop


def _block_spans(source: _Parsed, rng: random.Random) -> Iterator[tuple[int, int]]:
    """One cursor per block with a body on its own lines: after the header, or after the first
    body line."""
    for node in walk(source.root):
        colon = node.prev_sibling
        if node.type != "block" or colon is None or colon.type != ":" or node.start_point.row <= colon.end_point.row:
            continue
        header_row = colon.end_point.row
        if not source.line(header_row).rstrip().endswith(":"):  # a comment after the colon
            continue
        rows = _body_rows(source, header_row, _indent(source.line(node.parent.start_point.row)))
        if not rows or rows[-1] != node.end_point.row or len(rows) > MAX_BLOCK_LINES:
            continue  # a dedented line inside (a string's) or a block too long to write at once
        cursor_rows = [header_row, rows[0]] if len(rows) > 1 else [header_row]
        yield _line_end(source, rng.choice(cursor_rows)), _line_end(source, rows[-1])


def _body_rows(source: _Parsed, header_row: int, indent: int) -> list[int]:
    """The non-blank lines after the header indented more than it (blank lines may be among them)."""
    rows = []
    for row in range(header_row + 1, source.document.line_count):
        line = source.line(row)
        if not line.strip():
            continue
        if _indent(line) <= indent:
            break
        rows.append(row)
    return rows


def _line_end(source: _Parsed, row: int) -> int:
    """The end of the line's code: before trailing spaces and the line break."""
    start, _ = source.document.line_range(row)
    return start + len(source.line(row).rstrip())


def _top_level_functions(parsed: Sequence[_Parsed]) -> dict[str, set[str]]:
    """Each name of a top-level Python function, and the files that define one by that name."""
    defined_in: dict[str, set[str]] = {}
    for source in parsed:
        if source.file.language != "python":
            continue
        for child in source.root.named_children:
            node = child.child_by_field_name("definition") if child.type == "decorated_definition" else child
            name = node.child_by_field_name("name") if node is not None and node.type == "function_definition" else None
            if name is not None:
                defined_in.setdefault(source.text_of(name), set()).add(source.file.path)
    return defined_in


def _defined_elsewhere(source: _Parsed, defined_in: dict[str, set[str]]) -> set[str]:
    """Names of functions defined in other files, and nowhere in this one (at any depth)."""
    own = {source.text_of(name) for node in walk(source.root)
           if node.type in ("function_definition", "class_definition")
           and (name := node.child_by_field_name("name")) is not None}
    return {name for name, paths in defined_in.items() if paths - {source.file.path} and name not in own}


def _call_spans(source: _Parsed, elsewhere: set[str]) -> Iterator[tuple[int, int]]:
    for node in walk(source.root):
        function, arguments = node.child_by_field_name("function"), node.child_by_field_name("arguments")
        if node.type != "call" or arguments is None or arguments.type != "argument_list" \
                or arguments.start_point.row != arguments.end_point.row:
            continue
        name = function.child_by_field_name("attribute") if function.type == "attribute" else function
        opener, closer = arguments.children[0], arguments.children[-1]
        if name is None or name.type != "identifier" or source.text_of(name) not in elsewhere \
                or closer.type != ")" or closer.is_missing:
            continue
        cursor, end = source.offset(opener.end_point), source.offset(closer.start_point)
        if source.file.text[cursor:end].strip():
            yield cursor, end
