"""Turning raw model output into a suggestion worth showing.

Each filter is a small pure function of text and a :class:`CursorContext` (a snapshot of what
the document looked like around the cursor when the request came); ``postprocess`` chains them:

1. cut at the first sentinel (``<EOT>`` …);
2. cut a loop after its first copy: a line or a block of up to eight lines written three times,
   the same or with small changes the document does not show (a model stopped by
   ``maxNewTokens`` inside one more copy counts it); else drop a line ``maxNewTokens`` cut off;
3. limit to the scope: one line where more code follows the cursor; else the syntactic unit
   being written: a statement, the block holding the cursor (its closer; Python: the first line
   indented less), the enclosing function where nothing of it follows; closers after the cursor
   that the first line writes end it, unless that line opens a block;
4. cut a run of text repeating to the end of the last line, and lines that echo the document's
   next lines;
5. drop trailing whitespace and blank lines;
6. replace the start of the rest of the line that the suggestion writes (auto-paired closers,
   an echo of the code after the cursor), choosing what leaves brackets and strings least
   unbalanced; any other echo of the rest of the line is cut;
7. one space where the suggestion meets the text around it;
8. a suggestion that adds tree-sitter ERROR/MISSING nodes to the code around the cursor is cut
   to its longest leading part that adds none;
9. a multi-line body typed before a closer leaves that closer on a line of its own;
10. CRLF documents get CRLF suggestions.

A suggestion that comes out empty is dropped rather than shown; ``postprocess_outcome`` says which
step emptied it (``code-llama-ls complete --verbose`` prints that).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from tree_sitter import Parser, Tree

from code_llama_ls.languages import PLAIN_TEXT, grammar
from code_llama_ls.completion.span import INDENTED_LANGUAGES, Span, completion_scope, only_closers
from code_llama_ls.documents import Document

SENTINEL_TEXTS = ("▁<EOT>", "<EOT>", "▁<PRE>", "<PRE>", "▁<SUF>", "<SUF>", "▁<MID>", "<MID>", "</s>", "<s>")
NEXT_LINES = 40  # how many of the document's lines after the cursor's line are kept for echo checks
BRACKET_WINDOW_CHARS = 3_000  # text each side of the cursor whose brackets are counted
WINDOW_CHARS = 32_000  # code around the cursor re-parsed with a suggestion in it
MAX_SYNTAX_PARSES = 48  # budget of trial parses when cutting a suggestion to a clean leading part
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {v: k for k, v in _OPENERS.items()}
_CHAR_LITERAL = re.compile(r"'(?:\\.[^'\n]{0,9}|[^\\'\n])'")
_INLINE_LOOPS = (re.compile(r"(.{3,}?)\1{4,}$"), re.compile(r"(.{10,}?)\1{2,}$"))
_WORD = re.compile(r"\w")
_OPEN_ENDINGS = set("([{:,\\=+-*/%&|<>.")  # a line ending in one goes on
_DEFINITION = re.compile(r"\s*(async\s+def|def|class)\b")
_BLANK_LAST_LINE = re.compile(r"\n([ \t]*)$")
_TRAILING_CLOSERS = re.compile(r"[\s)\]};,:]+")
_REPEATED_BLOCK_LINES = 8
_INLINE_LOOP_CHARS = 1_000


@dataclass(frozen=True, eq=False)
class Suggestion:
    """What to show: ``text`` inserted at the cursor, replacing the ``replace_end`` characters
    after the cursor on its line (a range cursor → cursor + ``replace_end``)."""

    text: str
    replace_end: int = 0

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Suggestion):
            return (self.text, self.replace_end) == (other.text, other.replace_end)
        if isinstance(other, str):  # a plain insertion is its text
            return self.replace_end == 0 and self.text == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.text) if self.replace_end == 0 else hash((self.text, self.replace_end))


@dataclass(frozen=True)
class Outcome:
    """What post-processing made of a raw output: the suggestion, or in words why there is none."""

    suggestion: Suggestion | None
    why_empty: str = ""
    note: str = ""  # how it was shaped, where that is not the usual (a language without a grammar)


PLAIN_TEXT_NOTE = "no grammar for this language: shaped as plain text (brackets and quotes only, no syntax check)"
WROTE_NOTHING = "the model wrote nothing before its end token"
WROTE_WHITESPACE = "the model wrote only whitespace"
FIRST_LINE_BLANK = "the model's first line is blank, and only one line is suggested here"
CLOSED_AT_ONCE = "the model closed the block at the cursor before writing anything in it"
ECHOED_NEXT_LINES = "the model wrote only the lines that already follow the cursor"
ECHOED_LINE_SUFFIX = "the model wrote only what already follows the cursor"
SYNTAX_ERRORS = "every leading part of the model's text would add a syntax error"
DANGLING = "every part of the model's text leaves a bracket, string or block header open"


@dataclass(frozen=True)
class CursorContext:
    """The document around the cursor, as it was when the completion was requested."""

    line_suffix: str  # the rest of the cursor's line, after the cursor
    scope: Span
    line_prefix: str = ""  # the cursor's line before the cursor
    language: str = PLAIN_TEXT
    next_lines: tuple[str, ...] = ()  # the document's lines after the cursor's line (a few dozen)
    previous_lines: tuple[str, ...] = ()  # the document's lines before the cursor's line (a few dozen)
    open_quote: str | None = None  # the string the cursor is in (its quote), if any
    in_block_comment: bool = False  # the cursor is inside a /* comment */
    blocks_left_open: int = 0  # brackets open at the cursor that the document does not close
    function_indent: int | None = None  # Python: the enclosing def's indent, where none of its body follows
    crlf: bool = False  # the document's line breaks are "\r\n"
    window: tuple[str, str] | None = None  # syntax window: its text before and after the cursor
    window_tree: Tree | None = None  # the window's syntax tree where it is the whole document (parsed already)

    @classmethod
    def at(cls, document: Document, offset: int, scope: Span | None = None,
           cut_short: bool = False) -> CursorContext:
        """Snapshot what post-processing needs (the document may change while the model runs).
        ``cut_short``: the text is a window that ends in the middle of the code after it."""
        text = document.text
        position = document.position_at(offset, "utf-32")
        line_start, line_end = document.line_range(position.line)
        last_line = min(document.line_count, position.line + 1 + NEXT_LINES)
        return cls(
            line_suffix=text[offset:line_end],
            scope=completion_scope(document, offset) if scope is None else scope,
            line_prefix=text[line_start:offset],
            language=document.language,
            next_lines=tuple(document.line_text(n) for n in range(position.line + 1, last_line)),
            previous_lines=tuple(document.line_text(n) for n in range(max(0, position.line - NEXT_LINES), position.line)),
            **_brackets_at(document.language, text, offset, cut_short),
            function_indent=_function_indent(document.language, text, line_start, line_end),
            crlf=_uses_crlf(text, line_start, line_end),
            window=(window := _line_window(document, offset)),
            window_tree=document.tree if window is not None and sum(map(len, window)) == len(text) else None,
        )


# -- the filters ------------------------------------------------------------------------------


def cut_at_sentinel(text: str) -> str:
    """Never show sentinel text: everything from the first one on is dropped."""
    cut = min((i for i in (text.find(s) for s in SENTINEL_TEXTS) if i != -1), default=-1)
    return text if cut == -1 else text[:cut].rstrip(" ")


def limit_to_scope(text: str, scope: Span, cursor: CursorContext | None = None) -> str:
    """One line; or the syntactic unit being written: cut where it closes the block that holds
    the cursor (Python: also where it dedents out of it)."""
    if scope == "line":
        return text.split("\n", 1)[0].rstrip("\r")
    if cursor is not None:
        text = cut_at_statement_end(text, cursor)
        text = cut_at_block_close(text, cursor)
        if cursor.language in INDENTED_LANGUAGES:
            text = cut_at_dedent(text, cursor)
        else:
            text = cut_at_opened_block_end(text, cursor)
    return _strip_end(text)


def _strip_end(text: str) -> str:
    """Trailing whitespace off, but a last line break and the blank line after it stay: they
    say where the closer after the cursor goes (``reindent_before_closers``)."""
    stripped = text.rstrip()
    tail = text[len(stripped):]
    if "\n" not in tail:
        return text  # spaces at its end: trim_trailing_whitespace keeps them before code (``{ a |}``)
    return stripped + "\n" + tail.rsplit("\n", 1)[1] if stripped else stripped


def cut_at_statement_end(text: str, cursor: CursorContext) -> str:
    """Code before the cursor and more of the block after its line: the user is writing one
    statement, which ends with the first line that leaves no bracket open and opens no block."""
    first, newline, _ = text.partition("\n")
    line = (cursor.line_prefix + first).rstrip()
    if not newline or not cursor.line_prefix.strip() or not line or line[-1] in _OPEN_ENDINGS:
        return text
    following = next((row for row in cursor.next_lines if row.strip()), None)
    if following is None or _indent_width(following) < _indent_width(cursor.line_prefix):
        return text
    scan = _Scanner(cursor.language).feed(line)
    return first if not scan.stack and scan.quote is None and not scan.in_block_comment else text


def cut_at_block_close(text: str, cursor: CursorContext) -> str:
    """Brace balance: the suggestion may close the blocks the document leaves open (and stops at
    the end of that line); the next closer it has no opener for closes the cursor's block, which
    the document already closes.

    The closers after the cursor (auto-paired ones) may be written on the suggestion's first line
    (``a, b)`` in ``f(|)``): the suggestion replaces them and ends with that line, unless the line
    opens a block (``a, b):`` in ``def f(|):``, ``) {``), whose body it goes on with. Another
    closer ends the suggestion before it: before its line where it starts one (keeping that
    line's indentation for the closer already there), or after its line where the rest of that
    line is what follows the cursor (``self._args))`` ending a multi-line call).
    """
    scan = _scanner_at(cursor).feed(text)
    first_line_end = text.find("\n") if "\n" in text else len(text)
    left_open = cursor.blocks_left_open
    allowed = left_open + sum(ch in _CLOSERS for ch in cursor.line_suffix)
    written = [i for n, i in enumerate(scan.unopened_at) if left_open <= n < allowed and i < first_line_end]
    if written and not text[:written[0]].strip():
        return ""  # it closes the cursor's block before writing anything in it
    if written and _document_has_body(cursor):  # ``def area(|):`` above its body: the header only
        header = text[:first_line_end].rstrip()
        return header[:-1].rstrip() if header.endswith("{") and "{" in cursor.line_suffix else header
    if written and first_line_end < len(text) and not _opens_block(cursor, text[:first_line_end]):
        return text[:first_line_end]
    closers = [i for n, i in enumerate(scan.unopened_at) if n >= left_open and i not in written]
    if not closers and 0 < left_open <= len(scan.unopened_at):
        end = text.find("\n", scan.unopened_at[left_open - 1])  # it closed what was open
        return text if end == -1 else text[:end]
    if not closers:
        return text
    index = closers[0]
    line_start = text.rfind("\n", 0, index) + 1
    line_end = text.find("\n", index) if "\n" in text[index:] else len(text)
    if not text[line_start:index].strip():
        return text[:line_start] + text[line_start:index]  # the closer's indentation places the one after the cursor
    if line_start and cursor.line_suffix.strip() and text[index:line_end].rstrip() == cursor.line_suffix.rstrip():
        return text[:line_end]  # a last line that writes the closers after the cursor: they are replaced
    return text[:index]


def _document_has_body(cursor: CursorContext) -> bool:
    """Whether the header on the cursor's line already has its block: a ``{`` after the cursor
    or on the next line, or (Python) a next line indented deeper."""
    following = next((line for line in cursor.next_lines if line.strip()), "")
    if cursor.language in INDENTED_LANGUAGES:
        return bool(following) and _indent_width(following) > _indent_width(cursor.line_prefix)
    return "{" in cursor.line_suffix or following.lstrip().startswith("{")


def _opens_block(cursor: CursorContext, first_line: str) -> bool:
    """Whether the cursor's line, completed with the suggestion's first line, opens a block."""
    line = (cursor.line_prefix + first_line)
    if cursor.language in INDENTED_LANGUAGES:
        return _code_before_comment(line).endswith(":")
    return line.rstrip().endswith("{")


def cut_at_opened_block_end(text: str, cursor: CursorContext) -> str:
    """Brace languages: a first line that completes a header and opens its block (``w, h) {``
    in ``function area(|)``) is a header being written; the unit ends with the line that closes
    that block. (On a line of its own, an opened block is part of the rest of the enclosing one.)"""
    first = text.split("\n", 1)[0]
    if "\n" not in text or not first.rstrip().endswith("{") or not cursor.line_prefix.strip():
        return text
    scan = _scanner_at(cursor)
    at = 0
    for line in text.split("\n"):
        scan.feed(line + "\n")
        at += len(line) + 1
        if not scan.stack and at > len(first) + 1:
            return text[:at - 1]
    return text


def cut_at_dedent(text: str, cursor: CursorContext) -> str:
    """Python: the unit ends at the first line indented below it. That is the cursor's block, or
    the body of a header the cursor's line opens (``for x in y:``), or, where nothing of the
    enclosing function follows the cursor, that function's body (module level: never)."""
    lines = text.split("\n")
    floor = _dedent_floor(cursor.line_prefix, lines)
    if floor is None:
        return text
    if cursor.function_indent is not None:
        floor = min(floor, cursor.function_indent + 1)
    for n in range(1, len(lines)):
        if lines[n].strip() and _indent_width(lines[n]) < floor:
            return "\n".join(lines[:n])
    return text


def _dedent_floor(line_prefix: str, lines: list[str]) -> int | None:
    """The least indentation a line of the suggestion may have and still be inside the unit."""
    statement_indent = _indent_width(line_prefix)
    if line_prefix.strip():
        return statement_indent + (1 if _code_before_comment(line_prefix + lines[0]).endswith(":") else 0)
    first = next((n for n, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return None
    return _indent_width(lines[first]) + (len(line_prefix) if first == 0 else 0)


def _code_before_comment(line: str) -> str:
    return line.split("#", 1)[0].rstrip() if "#" in line else line.rstrip()


def cut_line_loop(text: str, cursor: CursorContext, truncated: bool = False) -> str | None:
    """Cut a loop after its first occurrence: a line or a block of up to eight lines written
    three times in a row, the same or with small changes (one number, name or string apart,
    where the document's lines around the cursor show no such run). ``truncated``: the model was
    stopped in the middle of its last line, which counts as one more copy where it is the start
    of one, and goes with the loop. ``None``: no loop."""
    lines = text.split("\n")
    cut_off = lines.pop() if truncated and len(lines) > 1 else None
    code = [n for n, line in enumerate(lines) if line.strip()]
    rows = [(cursor.line_prefix + lines[n] if n == 0 else lines[n]).rstrip() for n in code]
    # The first line is compared as the cursor's line would read, and as the model wrote it.
    variants = [rows] if not code or code[0] != 0 or not cursor.line_prefix.strip() else [rows, [lines[0].rstrip(), *rows[1:]]]
    cut = None
    for same in (_same_row, _near_row):
        found = [at for variant in variants if (at := _first_loop(variant, cut_off, cursor, same)) is not None]
        if found:
            cut = min(found)
            break
    if cut is None:
        return None
    kept = lines[:code[cut] + 1]
    if len(kept) > 1 and _Scanner(cursor.language).feed("\n".join(kept)).stack \
            and kept[-1].rstrip()[-1:] in _OPEN_ENDINGS:
        kept.pop()  # the cut block's last line is unclosed
    return "\n".join(kept)


def cut_inline_loop(text: str) -> str:
    """A run of text repeating to the end of the last line is cut after its first occurrence."""
    lines = text.split("\n")
    last = lines[-1]
    tail_start = max(0, len(last) - _INLINE_LOOP_CHARS)
    for pattern in _INLINE_LOOPS:
        match = pattern.search(last, tail_start)
        if match and _WORD.search(match.group(1)):
            lines[-1] = last[:match.start() + len(match.group(1))]
            break
    return "\n".join(lines)


def _first_loop(rows: list[str], cut_off: str | None, cursor: CursorContext, same) -> int | None:
    """The index of the last row of a loop's first copy, if the rows hold a loop."""
    for start in range(len(rows)):
        for size in range(1, _REPEATED_BLOCK_LINES + 1):
            if start + 2 * size > len(rows):
                break
            block = rows[start:start + size]
            copies = 1
            while len(rows) - (start + copies * size) >= size and all(
                    same(a, b) for a, b in zip(block, rows[start + copies * size:start + (copies + 1) * size])):
                copies += 1
            tail = rows[start + copies * size:]
            if cut_off is not None and len(tail) < size and all(same(a, b) for a, b in zip(block, tail)) \
                    and _starts_copy(cut_off, block[len(tail)]):
                copies += 1  # the model was stopped inside one more copy
            if copies >= 3 and (same is _same_row or _runs_away(rows, start + copies * size, cut_off)
                                and not _document_has_run(block, cursor)):
                return start + size - 1
    return None


def _runs_away(rows: list[str], run_end: int, cut_off: str | None) -> bool:
    """Near copies are a loop where the model was stopped by ``maxNewTokens`` while writing them
    (nothing but closers after them). A model that ended by itself, or went on with other code
    (``default:``, ``return 0;``), meant them: switch cases, struct fields, a list."""
    return cut_off is not None and all(not _WORD.search(row) for row in rows[run_end:])


def _same_row(a: str, b: str) -> bool:
    """Lines of code compare without their indentation; lines of brackets with it (``}`` closing
    three nested blocks is no loop)."""
    return a.strip() == b.strip() if _WORD.search(a) else a == b


_TOKENS = re.compile(r""" "(?:\\.|[^"\\])*" | '(?:\\.|[^'\\])*' | \w+ | \S """, re.VERBOSE)


def _near_row(a: str, b: str) -> bool:
    """The same indentation and punctuation, with a few names, numbers or strings changed: at
    most half of them (at least one), a counter that every changed number shares counting once
    (``x1 = f(1)`` → ``x2 = f(2)``)."""
    if a == b:
        return True
    if _indent_width(a) != _indent_width(b) or not _WORD.search(a):
        return False
    left, right = _TOKENS.findall(a), _TOKENS.findall(b)
    if len(left) != len(right):
        return False
    differ = [(x, y) for x, y in zip(left, right) if x != y]
    if not differ:
        return True
    if not all(_VALUE.match(x) and _VALUE.match(y) for x, y in differ):
        return False
    counters = [(x, y) for x, y in differ if _NUMBERED.fullmatch(x) and _NUMBERED.fullmatch(y)
                and _NUMBERED.sub("", x) == _NUMBERED.sub("", y)]
    changes = len(differ) - len(counters) + (1 if counters else 0)
    return changes <= max(1, sum(1 for token in left if _VALUE.match(token)) // 2)


_NUMBERED = re.compile(r"[A-Za-z_]*\d+")
_VALUE = re.compile(r"[\w\"']")  # a name, a number or a string


def _starts_copy(cut_off: str, row: str) -> bool:
    """Whether a cut-off last line is the start of ``row`` (and not just its indentation)."""
    start = cut_off.strip()
    return len(start) >= 2 and row.strip().startswith(start)


def _document_has_run(block: list[str], cursor: CursorContext) -> bool:
    """Whether the document around the cursor has two copies in a row of a block like ``block``:
    its own pattern (a table of similar entries), which the suggestion may go on with."""
    lines = [line.rstrip() for line in (*cursor.previous_lines, *cursor.next_lines) if line.strip()]
    size = len(block)
    return any(all(_near_row(row, line) for row, line in zip(block * 2, lines[i:i + 2 * size]))
               for i in range(len(lines) - 2 * size + 1))


def drop_echoed_next_lines(text: str, cursor: CursorContext) -> str:
    """Cut the suggestion where it starts repeating the document's next lines.

    Lines compare with their indentation (a ``}`` closing an inner block is not the ``}`` that
    follows in the document); a match needs the document's next three code lines, or all of
    the suggestion's remaining lines if fewer.
    """
    following = [line.rstrip() for line in cursor.next_lines if line.strip()]
    if not following:
        return text
    lines = text.split("\n")
    whole_first_line = not cursor.line_prefix.strip()
    rows = [(n, (cursor.line_prefix + line if n == 0 else line).rstrip())
            for n, line in enumerate(lines) if line.strip() and (n > 0 or whole_first_line)]
    for k, (n, _) in enumerate(rows):
        rest = [row for _, row in rows[k:]]
        count = min(len(rest), 3, len(following))
        if rest[:count] == following[:count]:
            return "\n".join(lines[:n]).rstrip()
    return text


def trim_trailing_whitespace(text: str, line_suffix: str = "") -> str:
    """No trailing spaces and no trailing blank lines; the last line keeps its spaces where it
    is inserted before more code on the cursor's line (``a + |b``)."""
    lines = text.split("\n")
    last = lines[-1]
    lines = [line.rstrip() for line in lines]
    if len(lines) == 1 and line_suffix.strip():
        lines[-1] = last
    while len(lines) > 1 and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def replace_rest_of_line(text: str, cursor: CursorContext) -> Suggestion | None:
    """The suggestion wrote what follows the cursor on its line (``a, b):`` in ``f(|):``,
    ``a, b)`` in ``foo(|, b)``): replace the longest start of the rest of the line that the
    suggestion ends with (where the rest is only closers, that it writes in order: ``x", y);``
    for ``("|");``), among the choices (inserting included) that leave the line's brackets
    and strings least unbalanced: as the document has them, or better where the suggestion
    writes an opener whose closer was already there (``def |):`` + ``f(self):``)."""
    rest = cursor.line_suffix.rstrip()
    if not rest:
        return None
    # A multi-line suggestion may write them at the end of its first line (``w, h):`` and the
    # body of ``def area(|):``) or at its end (``self._args))`` closing a multi-line call).
    first_line = text.split("\n", 1)[0]
    header = first_line.rstrip()
    if header.endswith("{") and cursor.language not in INDENTED_LANGUAGES:
        header = header[:-1].rstrip()  # ``w, h) {``: the closers are written before the block it opens
    for written in ([header] if first_line != text else []) + [text]:
        best = _replaced_size(written, rest, cursor)
        if best:
            return Suggestion(text, best)
    return None


def _replaced_size(written: str, rest: str, cursor: CursorContext) -> int:
    closers_only = only_closers(rest)
    sizes = [size for size in range(min(len(rest), len(written)), 0, -1) if not rest[size - 1].isspace() and (
        written.endswith(rest[:size]) or closers_only and _written_in_order(rest[:size], written))]
    if not sizes:
        return 0
    line = cursor.line_prefix
    return min(sizes + [0], key=lambda size: (_imbalance(cursor.language, line + written + rest[size:]), -size))


def _written_in_order(closers: str, text: str) -> bool:
    """Whether ``text`` ends with the last of ``closers`` and writes all of them in order."""
    wanted = [ch for ch in closers if not ch.isspace()]
    if not wanted or not text.rstrip().endswith(wanted[-1]):
        return False
    at = 0
    for ch in wanted:
        at = text.find(ch, at) + 1
        if not at:
            return False
    return True


def _imbalance(language: str, text: str) -> int:
    """Brackets left open or closed without an opener, and an open string or comment."""
    scan = _Scanner(language).feed(text)
    return len(scan.stack) + len(scan.unopened) + (scan.quote is not None) + scan.in_block_comment


def drop_dangling_end(suggestion: Suggestion, cursor: CursorContext, model_ended: bool) -> Suggestion | None:
    """No bracket, string or comment the suggestion opens is left open at its end, and it does
    not end with a block header without its block (Python's ``for x in xs:``, which parses, and
    takes the next line as its body): its last lines are dropped until it ends clean. A one-line
    header the model itself ended on (``if x > 0:`` then its end token) is for the user to fill."""
    lines = suggestion.text.split("\n")
    count, replace_end = len(lines), suggestion.replace_end
    while lines and _dangles("\n".join(lines), replace_end, cursor):
        if len(lines) == 1 and model_ended and "\n" not in suggestion.text and _opens_block(cursor, lines[0]):
            return suggestion
        lines.pop()
        replace_end = 0
    if len(lines) == count:
        return suggestion
    kept = "\n".join(lines).rstrip()
    if not kept.strip():
        return None
    return replace_rest_of_line(kept, cursor) or Suggestion(kept)


def _dangles(text: str, replace_end: int, cursor: CursorContext) -> bool:
    """Whether the cursor's line, accepted with ``text``, leaves more open than the line did."""
    document = _scanner_at(cursor).feed(cursor.line_suffix)
    accepted = _scanner_at(cursor).feed(text + cursor.line_suffix[replace_end:])
    if len(accepted.stack) > len(document.stack) or accepted.in_block_comment and not document.in_block_comment:
        return True
    if accepted.quote is not None and document.quote is None:
        return True
    last = text.rsplit("\n", 1)[-1] if "\n" in text else cursor.line_prefix + text
    return cursor.language in INDENTED_LANGUAGES and _code_before_comment(last).endswith(":") \
        and not cursor.line_suffix.strip()


def drop_cut_off_line(text: str) -> str:
    """A model stopped by ``maxNewTokens`` left its last line unfinished: drop it."""
    return text[:text.rfind("\n")] if "\n" in text.rstrip() else text


def reindent_before_closers(suggestion: Suggestion, cursor: CursorContext, last_line: str | None) -> Suggestion:
    """A multi-line body typed inside ``{|}`` or ``f(|)`` that ends with a line break leaves the
    closer on a line of its own, indented as the model's last line or as the line that opened
    it; a brace block always does. ``last_line``: the model's last line where it was blank."""
    rest = cursor.line_suffix[suggestion.replace_end:]
    if "\n" not in suggestion.text or not rest[:1] in (")", "]", "}"):
        return suggestion
    if last_line is None and not (rest[0] == "}" and cursor.language not in INDENTED_LANGUAGES):
        return suggestion
    indent = last_line or cursor.line_prefix[:_indent_width(cursor.line_prefix)]
    return Suggestion(suggestion.text.rstrip() + "\n" + indent, suggestion.replace_end)


def join_without_doubled_space(suggestion: Suggestion, cursor: CursorContext) -> Suggestion:
    """Where the suggestion meets the text around it, one space, not two."""
    text = suggestion.text
    if cursor.line_prefix.endswith((" ", "\t")) and cursor.line_prefix.strip():
        first, newline, others = text.partition("\n")
        text = first.lstrip(" \t") + newline + others
    if cursor.line_suffix[suggestion.replace_end:][:1] in (" ", "\t"):
        text = text.rstrip(" \t")
    return Suggestion(text, suggestion.replace_end)


def drop_echoed_line_suffix(text: str, line_suffix: str, line_prefix: str = "",
                            language: str = PLAIN_TEXT) -> str:
    """The model repeated what already follows the cursor on this line: keep only what is new.

    Only where what stays leaves brackets and strings as the cursor found them, so ``foo(x)``
    before ``x)`` is not cut to ``foo(``.
    """
    rest = line_suffix.strip()
    stripped = text.rstrip()
    if not rest or not stripped.endswith(rest):
        return text
    head = stripped[: -len(rest)]
    if line_suffix[:1].isspace():
        head = head.rstrip()
    return head if _neutral(language, line_prefix, head) else text


def check_syntax(suggestion: Suggestion, cursor: CursorContext, model_ended: bool = False) -> Suggestion | None:
    """Reject a suggestion that adds ERROR/MISSING nodes to the code around the cursor; keep its
    longest leading part (by line, then by character at token boundaries) that adds none.

    Where the model itself ended by opening a bracket (``if (x) {`` and its end token:
    ``model_ended``), the user fills it next: that bracket is closed for the check. A part that
    post-processing cut from longer text gets no such allowance: it would leave the bracket
    dangling. The window is parsed once; each trial is an incremental
    re-parse of a copy of that tree with the insertion edited in (a fraction of a full parse).
    """
    parser = _parser(cursor.language)
    if cursor.window is None or parser is None:
        return suggestion
    before, after = (part.encode("utf-8", "surrogatepass") for part in cursor.window)
    window_tree = cursor.window_tree or parser.parse(before + after)
    baseline = len(_errors(window_tree))
    start = len(before)
    start_point = (before.count(b"\n"), start - (before.rfind(b"\n") + 1))
    parses = 0

    def clean(text: str, replace_end: int, whole: bool = False) -> bool:
        nonlocal parses
        parses += 1
        opened = _closers_left_open(cursor.language, text) if whole and not replace_end else ""
        inserted = (text + opened).encode("utf-8", "surrogatepass")
        removed = len(cursor.window[1][:replace_end].encode("utf-8", "surrogatepass"))
        end = start + len(inserted)
        rows = inserted.count(b"\n")
        column = len(inserted) - (inserted.rfind(b"\n") + 1) if rows else start_point[1] + len(inserted)
        tree = window_tree.copy()
        tree.edit(start_byte=start, old_end_byte=start + removed, new_end_byte=end, start_point=start_point,
                  old_end_point=(start_point[0], start_point[1] + removed),
                  new_end_point=(start_point[0] + rows, column))
        errors = _errors(parser.parse(before + inserted + after[removed:], tree))
        if len(errors) > baseline:
            return False
        # Where the code around was broken already, the count can stay the same while the
        # suggestion breaks something else: an error that overlaps the inserted text is its own,
        # unless it is a broken region around the whole of it.
        return not any(_overlaps(a, b, start, end) for a, b, _ in errors)

    if clean(suggestion.text, suggestion.replace_end, model_ended):
        return suggestion
    for part in _leading_parts(suggestion.text):
        if parses >= MAX_SYNTAX_PARSES:
            break
        if clean(part, 0):
            return Suggestion(part)
    return None


def postprocess(raw: str, cursor: CursorContext, truncated: bool = False) -> Suggestion | None:
    return postprocess_outcome(raw, cursor, truncated).suggestion


def postprocess_outcome(raw: str, cursor: CursorContext, truncated: bool = False) -> Outcome:
    """The filters in order; the first that leaves nothing names the reason. ``truncated``: the
    model was stopped by ``maxNewTokens``."""
    text = raw.replace("\r\n", "\n")
    if not text.strip():
        return Outcome(None, WROTE_WHITESPACE if text else WROTE_NOTHING)
    text = written = cut_at_sentinel(text)
    if not text.strip():
        return Outcome(None, WROTE_NOTHING)
    looped = cut_line_loop(text, cursor, truncated)
    if looped is not None:
        text = looped
    elif truncated:
        text = drop_cut_off_line(text)
    text = limit_to_scope(text, cursor.scope, cursor)
    if not text.strip():
        return Outcome(None, FIRST_LINE_BLANK if cursor.scope == "line" else CLOSED_AT_ONCE)
    text = cut_inline_loop(text)
    text = drop_echoed_next_lines(text, cursor)
    if not text.strip():
        return Outcome(None, ECHOED_NEXT_LINES)
    blank_last_line = _BLANK_LAST_LINE.search(text)
    text = trim_trailing_whitespace(text, cursor.line_suffix)
    suggestion = replace_rest_of_line(text, cursor) or Suggestion(
        drop_echoed_line_suffix(text, cursor.line_suffix, cursor.line_prefix, cursor.language))
    if not suggestion.text.strip():
        return Outcome(None, ECHOED_LINE_SUFFIX)
    model_ended = not truncated and suggestion.text.strip() == written.strip()
    suggestion = check_syntax(join_without_doubled_space(suggestion, cursor), cursor, model_ended)
    if suggestion is None:
        return Outcome(None, SYNTAX_ERRORS)
    suggestion = drop_dangling_end(suggestion, cursor, model_ended and suggestion.text.strip() == written.strip())
    if suggestion is None:
        return Outcome(None, DANGLING)
    if not suggestion.text.strip() or suggestion.text == cursor.line_suffix[:suggestion.replace_end]:
        return Outcome(None, ECHOED_LINE_SUFFIX)  # only what is already there
    suggestion = reindent_before_closers(suggestion, cursor, blank_last_line and blank_last_line.group(1))
    if cursor.crlf:
        suggestion = Suggestion(suggestion.text.replace("\n", "\r\n"), suggestion.replace_end)
    return Outcome(suggestion)


# -- helpers ----------------------------------------------------------------------------------


class _Scanner:
    """Brackets outside strings and comments, roughly per language.

    ``state`` is what the rest of a line depends on: open brackets, closers of brackets opened
    before the scanned text, and the string or comment the scan ends in.
    """

    def __init__(self, language: str) -> None:
        self.language = language
        self.line_comment = "#" if language in INDENTED_LANGUAGES else (None if language == PLAIN_TEXT else "//")
        self.block_comments = language not in INDENTED_LANGUAGES and language != PLAIN_TEXT
        if language in INDENTED_LANGUAGES:
            self.quotes: tuple[str, ...] = ('"""', "'''", '"', "'")
        elif language in ("javascript", "typescript", "typescriptreact"):
            self.quotes = ('"', "'", "`")
        elif language == "go":
            self.quotes = ('"', "`")
        else:
            self.quotes = ('"',) if language != PLAIN_TEXT else ('"', "'")
        self.char_literals = self.language in ("rust", "go", "java", "c", "cpp")
        self.stack: list[str] = []
        self.unopened: list[str] = []
        self.quote: str | None = None
        self.in_block_comment = False
        self.unopened_at: list[int] = []  # where each closer with no opener in the text is

    @property
    def state(self) -> tuple:
        return tuple(self.stack), tuple(self.unopened), self.quote, self.in_block_comment

    def feed(self, text: str) -> _Scanner:
        """Scan on from the current state; regular expressions skip the text between tokens."""
        code, in_quote = _scanner_patterns(self.line_comment, self.block_comments, self.quotes, self.char_literals)
        i, n = 0, len(text)
        while i < n:
            if self.in_block_comment:
                end = text.find("*/", i)
                i, self.in_block_comment = (n, True) if end == -1 else (end + 2, False)
                continue
            if self.quote is not None:
                match = in_quote[self.quote].search(text, i)
                if match is None:
                    break
                token = match.group()
                if token == "\\":
                    i = match.start() + 2
                elif token == "\n":
                    self.quote, i = None, match.end()  # an unterminated one-line string ends with its line
                else:
                    self.quote, i = None, match.end()
                continue
            match = code.search(text, i)
            if match is None:
                break
            token, i = match.group(), match.start()
            if token == self.line_comment:
                end = text.find("\n", i)
                i = n if end == -1 else end
            elif token == "/*":
                self.in_block_comment, i = True, i + 2
            elif token == "'" and self.char_literals:
                literal = _CHAR_LITERAL.match(text, i)
                i = literal.end() if literal else i + 1  # no literal: a Rust lifetime, a C++14 digit mark
            elif token in _OPENERS:
                self.stack.append(token)
                i += 1
            elif token in _CLOSERS:
                if self.stack:
                    self.stack.pop()
                else:
                    self.unopened.append(token)
                    self.unopened_at.append(i)
                i += 1
            else:
                self.quote, i = token, i + len(token)
        return self


@cache
def _scanner_patterns(line_comment: str | None, block_comments: bool, quotes: tuple[str, ...],
                      char_literals: bool) -> tuple[re.Pattern, dict[str, re.Pattern]]:
    """The tokens a scan stops at outside strings, and inside each kind of string."""
    tokens = ([line_comment] if line_comment else []) + (["/*"] if block_comments else []) + list(quotes) \
        + (["'"] if char_literals else [])
    code = re.compile("|".join(re.escape(t) for t in tokens) + r"|[()\[\]{}]")
    in_quote = {q: re.compile(("" if q == "`" else r"\\|") + re.escape(q) + (r"|\n" if q in ('"', "'") else ""))
                for q in quotes}
    return code, in_quote


def _scanner_at(cursor: CursorContext) -> _Scanner:
    """A scanner that starts in the string or comment the cursor is in."""
    scan = _Scanner(cursor.language)
    scan.quote, scan.in_block_comment = cursor.open_quote, cursor.in_block_comment
    return scan


def _neutral(language: str, line_prefix: str, inserted: str) -> bool:
    """Whether ``inserted`` leaves brackets and strings as the cursor found them."""
    return _Scanner(language).feed(line_prefix).state == _Scanner(language).feed(line_prefix + inserted).state


def _brackets_at(language: str, text: str, offset: int, cut_short: bool = False) -> dict:
    """The string or block comment the cursor is in, and how many brackets open before the
    cursor no closer after it closes (scanned in windows each side of it).

    Closers are counted up to the next top-level statement or the end of the text; where the
    scan or the text (``cut_short``) ends before either (a long function goes on), the brackets
    count as closed."""
    before = _Scanner(language).feed(text[max(0, offset - BRACKET_WINDOW_CHARS):offset])
    found = {"open_quote": before.quote, "in_block_comment": before.in_block_comment, "blocks_left_open": 0}
    if before.quote is None and not before.in_block_comment and before.stack:
        following = text[offset:offset + BRACKET_WINDOW_CHARS]
        top = TOP_LEVEL_LINE.search(following)
        if top is None and (cut_short or offset + BRACKET_WINDOW_CHARS < len(text)):
            return found
        after = _Scanner(language).feed(following if top is None else following[:top.start()])
        found["blocks_left_open"] = max(0, len(before.stack) - len(after.unopened))
    return found


# A line at column 0 that starts a statement: not a label or access specifier (``public:``), not
# Python's ``else:``/``except``, which go on with the statement before them.
TOP_LEVEL_LINE = re.compile(r"(?<=\n)(?!\w+:[ \t]*(?:\r?\n|$)|(?:else|elif|except|finally)\b)[A-Za-z_@#$]")


def _function_indent(language: str, text: str, line_start: int, line_end: int) -> int | None:
    """Python: the indentation of the ``def``/``class`` holding the cursor's line, where no line
    of its body follows the cursor's line (the user is writing the rest of it); else ``None``."""
    if language not in INDENTED_LANGUAGES:
        return None
    line = text[line_start:line_end]
    indent = _indent_width(line) + (1 if _code_before_comment(line).endswith(":") else 0)
    header = None
    for previous in reversed(text[max(0, line_start - BRACKET_WINDOW_CHARS * 4):line_start].split("\n")):
        width = _indent_width(previous)
        if previous.strip() and width < indent:
            if _DEFINITION.match(previous):
                header = width
                break
            indent = width
    if header is None:
        return None
    following = next((l for l in text[line_end:line_end + BRACKET_WINDOW_CHARS].split("\n") if l.strip()), None)
    return header if following is None or _indent_width(following) <= header else None


def _closers_left_open(language: str, text: str) -> str:
    """The closer of the block a one-line suggestion opens at its very end (``if (x) {`` →
    ``}``): brace languages only."""
    stripped = text.rstrip()
    if not stripped.endswith("{") or "\n" in stripped or language in INDENTED_LANGUAGES:
        return ""
    scan = _Scanner(language).feed(stripped)
    if not scan.stack or scan.quote is not None or scan.in_block_comment:
        return ""
    return "".join(_OPENERS[ch] for ch in reversed(scan.stack))


def _leading_parts(text: str):
    """Shorter and shorter leading parts: whole lines, then the first line without the closers
    or punctuation it ends with (an extra ``)``) or cut after a ``;``. Never another cut inside the
    first line's code: ``x = foo`` from ``x = foo(a,`` parses, and is wrong."""
    seen = {text}
    lines = text.split("\n")
    candidates = ["\n".join(lines[:n]).rstrip() for n in range(len(lines) - 1, 0, -1)]
    first = lines[0]
    candidates += [first[:i].rstrip() for i in range(len(first) - 1, 0, -1)
                   if _TRAILING_CLOSERS.fullmatch(first, i) or first[i - 1] == ";"]
    for candidate in candidates:
        if candidate.strip() and candidate not in seen:
            seen.add(candidate)
            yield candidate


@cache
def _parser(language: str) -> Parser | None:
    lang = grammar(language)
    return Parser(lang) if lang is not None else None


def _overlaps(a: int, b: int, start: int, end: int) -> bool:
    """Whether an error node [a, b) is the inserted text's [start, end): it lies or begins or ends
    in it (a MISSING node strictly inside it; at its edges one is the code around's)."""
    if a == b:
        return start < a < end
    return a < end and b > start and not (a < start and b > end)


def _errors(tree: Tree) -> list[tuple[int, int, bool]]:
    """The tree's ERROR and MISSING nodes: (start byte, end byte, is MISSING)."""
    found, stack = [], [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            found.append((node.start_byte, node.end_byte, node.is_missing))
        if node.has_error:
            stack.extend(node.children)
    return found


def _indent_width(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _uses_crlf(text: str, line_start: int, line_end: int) -> bool:
    if line_end < len(text):
        return text.startswith("\r\n", line_end)
    return line_start >= 2 and text[line_start - 2:line_start] == "\r\n"


def _line_window(document: Document, offset: int) -> tuple[str, str] | None:
    """The code around the cursor that a suggestion is checked in: whole lines, up to
    ``WINDOW_CHARS`` in all, half on each side of the cursor (the whole of a small file or of
    the windows ``shape_suggestion`` cuts)."""
    if document.tree is None:
        return None
    text, half = document.text, WINDOW_CHARS // 2
    start = 0 if offset <= half else text.find("\n", offset - half, offset) + 1 or text.rfind("\n", 0, offset) + 1
    end = len(text) if len(text) - offset <= half else text.rfind("\n", offset, offset + half)
    if end == -1:
        end = text.find("\n", offset)
        end = len(text) if end == -1 else end
    return text[start:offset], text[offset:end]
