"""Editor states cut from real code, for ``bench shape``.

A state is a file with a gold span removed and the cursor where it was, of one of five kinds:

1. the rest of a non-empty block from the start of one of its lines (the cursor line keeps the
   gold's first-line indentation); gold: the rest of the block, or of the function where nothing
   of the function follows the block;
2. the body of a block whose header line stays (a brace block keeps its ``}``);
3. the text strictly between an opener and its matching closer (arguments, a body);
4. the rest of a line with only closers after it;
5. a span inside a line with more code after it.

Cursors and span ends fall on tree-sitter token boundaries; nothing inside a comment.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

from tree_sitter import Node, Parser

from code_llama_ls.context.base import walk
from code_llama_ls.languages import grammar

KINDS = (1, 2, 3, 4, 5)
STATE_CLOSERS = frozenset(")]}\"'`")  # what auto-pairing leaves after the cursor
TRAILING_PUNCTUATION = frozenset(";:,")
BLOCKS = {"python": ("block",), "javascript": ("statement_block", "class_body")}
FUNCTIONS = {"python": ("function_definition", "class_definition"),
             "javascript": ("function_declaration", "function_expression", "arrow_function", "method_definition",
                            "class_declaration", "generator_function_declaration")}
PAIRS = {"(": ")", "[": "]", "{": "}"}
MAX_GOLD_CHARS = 400


@dataclass(frozen=True)
class State:
    """``original`` with ``original[cursor:gold_end]`` removed; the cursor at ``cursor``."""

    path: str
    language: str
    kind: int
    original: str
    cursor: int
    gold_end: int

    @property
    def prefix(self) -> str:
        return self.original[:self.cursor]

    @property
    def suffix(self) -> str:
        return self.original[self.gold_end:]

    @property
    def gold(self) -> str:
        return self.original[self.cursor:self.gold_end]


@cache
def parser(language: str) -> Parser:
    return Parser(grammar(language))


def states_in(path: str, text: str, language: str, kind: int, rng: random.Random) -> Iterator[State]:
    """Every candidate state of one kind in one file, in a seeded random order."""
    tree = parser(language).parse(text.encode())
    finders = {1: _rest_of_block, 2: _block_body, 3: _between_pair, 4: _rest_before_closers, 5: _inner_span}
    spans = list(finders[kind](tree.root_node, text, language, rng))
    rng.shuffle(spans)
    for cursor, end in spans:
        gold = text[cursor:end]
        if gold.strip() and len(gold) <= MAX_GOLD_CHARS and not _in_comment(tree.root_node, cursor, end):
            yield State(path, language, kind, text, cursor, end)


def _statements(block: Node) -> list[Node]:
    return [child for child in block.named_children if child.type != "comment"]


def _starts_line(text: str, offset: int) -> bool:
    line_start = text.rfind("\n", 0, offset) + 1
    return not text[line_start:offset].strip()


def _rest_of_block(root: Node, text: str, language: str, rng: random.Random) -> Iterator[tuple[int, int]]:
    for block in walk(root):
        statements = _statements(block) if block.type in BLOCKS[language] else []
        if len(statements) < 2:
            continue
        start = rng.choice(statements[1:])
        if _starts_line(text, start.start_byte):
            yield start.start_byte, _gold_end(block, statements[-1].end_byte, text, language)


def _gold_end(block: Node, end: int, text: str, language: str) -> int:
    """The block's end, or its function's where only closers lie between the two."""
    node = block.parent
    while node is not None and node.type not in FUNCTIONS[language]:
        node = node.parent
    body = node.child_by_field_name("body") if node is not None else None
    statements = _statements(body) if body is not None else []
    if not statements or statements[-1].end_byte <= end:
        return end
    between = text[end:statements[-1].end_byte]
    return statements[-1].end_byte if set(between) <= STATE_CLOSERS | TRAILING_PUNCTUATION | set(" \t\n") else end


def _block_body(root: Node, text: str, language: str, rng: random.Random) -> Iterator[tuple[int, int]]:
    for block in walk(root):
        statements = _statements(block) if block.type in BLOCKS[language] else []
        if not statements or not _starts_line(text, statements[0].start_byte):
            continue
        header_end = text.rfind("\n", 0, statements[0].start_byte)
        header = text[text.rfind("\n", 0, header_end) + 1:header_end].rstrip()
        if header.endswith(":" if language == "python" else "{"):
            cursor = header_end - (len(text[:header_end]) - len(text[:header_end].rstrip()))
            yield cursor, statements[-1].end_byte


def _between_pair(root: Node, text: str, language: str, rng: random.Random) -> Iterator[tuple[int, int]]:
    for node in walk(root):
        if node.child_count < 3 or node.children[0].type not in PAIRS:
            continue
        opener, closer = node.children[0], node.children[-1]
        if closer.type == PAIRS[opener.type] and not closer.is_missing:
            yield opener.end_byte, closer.start_byte


def _leaves_by_line(root: Node) -> dict[int, list[Node]]:
    lines: dict[int, list[Node]] = {}
    for node in walk(root):
        if node.child_count == 0 and node.end_byte > node.start_byte and node.start_point[0] == node.end_point[0]:
            lines.setdefault(node.start_point[0], []).append(node)
    return lines


def _rest_before_closers(root: Node, text: str, language: str, rng: random.Random) -> Iterator[tuple[int, int]]:
    for leaves in _leaves_by_line(root).values():
        tail = len(leaves)
        while tail > 0 and (leaves[tail - 1].type in STATE_CLOSERS | TRAILING_PUNCTUATION
                            or leaves[tail - 1].type == "string_end"):
            tail -= 1
        if tail == len(leaves) or tail < 2 or not set(text[leaves[tail].start_byte:leaves[-1].end_byte]) & STATE_CLOSERS:
            continue
        start = rng.randrange(1, tail)
        yield leaves[start].start_byte, leaves[tail].start_byte


def _inner_span(root: Node, text: str, language: str, rng: random.Random) -> Iterator[tuple[int, int]]:
    for leaves in _leaves_by_line(root).values():
        if len(leaves) < 4:
            continue
        start = rng.randrange(1, len(leaves) - 2)
        end = rng.randrange(start, len(leaves) - 2)
        rest = text[leaves[end].end_byte:leaves[-1].end_byte]
        if set(rest.strip()) - STATE_CLOSERS - TRAILING_PUNCTUATION:
            yield leaves[start].start_byte, leaves[end].end_byte


def _in_comment(root: Node, start: int, end: int) -> bool:
    node = root.descendant_for_byte_range(start, max(start, end - 1))
    while node is not None:
        if "comment" in node.type:
            return True
        node = node.parent
    return False


def error_count(text: str, language: str) -> int:
    """ERROR and MISSING nodes in the whole text's tree."""
    tree = parser(language).parse(text.encode("utf-8", "surrogatepass"))
    found, stack = 0, [tree.root_node]
    while stack:
        node = stack.pop()
        found += node.is_error or node.is_missing
        if node.has_error:
            stack.extend(node.children)
    return found
