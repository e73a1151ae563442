"""Python for the context engine, all from the tree-sitter tree and the file system.

- scopes: module → class → function/method around the cursor, headers verbatim; it also holds
  while the user types (a cursor on the blank line after a body, ``def`` keywords inside ERROR
  nodes of a half-written line).
- imports: every ``import``/``from … import`` (inside functions too), relative levels, ``*``.
- references: name chains near the cursor (``os.path.join`` → ``("os", "path", "join")``).
- resolve: where an import leads, statically: workspace roots, then the interpreter's
  stdlib/site-packages (``python_search_paths``); stubs before sources; packages, submodules,
  relative imports. Nothing resolved is ever imported or run.
- definition / member / outline: skeletons (signature verbatim, docstring, member signatures,
  bodies elided with ``...``), following re-exports (``from .x import y``, ``from .x import *``
  with ``__all__``) up to three hops.
"""

from __future__ import annotations

import builtins
import json
import keyword
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from tree_sitter import Node, Query, QueryCursor, Tree

from code_llama_ls.context.base import Definition, Import, ParsedFile, Reference, Scope, Workspace
from code_llama_ls.languages import grammar
from code_llama_ls.memory import Lru

PYTHON = grammar("python")
if PYTHON is None:  # pragma: no cover - tree-sitter-python is a dependency
    raise ImportError("tree-sitter-python is not installed")

NAMES_QUERY = Query(PYTHON, "(identifier) @name")

MAX_HOPS = 3
DOC_LINES = 6  # docstring lines kept in a function's / class's own skeleton
CLASS_MEMBERS = 30  # methods and attributes listed in a class skeleton
CLASS_CHARS = 800  # ~250 tokens: a class skeleton must fit a small context share whole
MEMBER_DOCS_UP_TO = 12  # a class with more members lists them without their docstrings
ASSIGNMENT_LINES = 3
KEPT_DUNDERS = frozenset({
    "__init__", "__new__", "__call__", "__enter__", "__exit__", "__aenter__", "__aexit__", "__iter__",
    "__next__", "__aiter__", "__anext__", "__getitem__", "__setitem__", "__len__", "__contains__",
    "__post_init__",
})
_NOISE = frozenset(dir(builtins)) | frozenset(keyword.kwlist) | {"self", "cls"}
_SCOPE_TYPES = {"function_definition", "class_definition"}
_PARAMETER_PARENTS = frozenset({
    "parameters", "lambda_parameters", "list_splat_pattern", "dictionary_splat_pattern",
    "typed_parameter",
})
_NAMED_BY_FIELD = frozenset({
    "default_parameter", "typed_default_parameter", "keyword_argument", "function_definition",
    "class_definition",
})
_IMPORT_STATEMENTS = frozenset({"import_statement", "import_from_statement", "future_import_statement"})
_BINDING_PARENTS = frozenset({"assignment", "for_statement", "for_in_clause"})
_BINDING_LISTS = frozenset({"pattern_list", "tuple_pattern", "list_pattern"})
_NOT_REFERENCES = frozenset({
    "dotted_name", "aliased_import", "global_statement", "nonlocal_statement", "as_pattern_target",
    "import_prefix",
})
_STRING_PREFIX_CHARS = "rRbBuUfF"
MODULE_ALIASES = {"os.path": "ntpath" if sys.platform == "win32" else "posixpath"}
"""Modules that exist only as another module's alias at run time (``sys.modules["os.path"]``)."""


# -- small helpers ---------------------------------------------------------------------------


def _text(source: bytes, node: Node) -> str:
    return source[node.start_byte:node.end_byte].decode("utf-8", "replace")


def _dotted(source: bytes, node: Node) -> str:
    return "".join(_text(source, node).split())


def _line_start(source: bytes, byte: int) -> int:
    return source.rfind(b"\n", 0, byte) + 1


def _line_end(source: bytes, byte: int) -> int:
    end = source.find(b"\n", byte)
    end = len(source) if end == -1 else end
    return end - 1 if end > 0 and source[end - 1:end] == b"\r" else end


def _lines(source: bytes, start_byte: int, end_byte: int) -> list[str]:
    """The whole source lines spanning [start_byte, end_byte], verbatim (no line breaks)."""
    start = _line_start(source, start_byte)
    end = _line_end(source, max(start_byte, end_byte - 1) if end_byte > start_byte else start_byte)
    return source[start:end].decode("utf-8", "replace").replace("\r\n", "\n").split("\n")


def _column_of(source: bytes, byte: int) -> int:
    return byte - _line_start(source, byte)


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


# -- imports ---------------------------------------------------------------------------------


def _imports_of(node: Node, source: bytes) -> list[Import]:
    """The bindings of one import statement node."""
    line = node.start_point.row
    if node.type == "import_statement":
        out = []
        for name in node.children_by_field_name("name"):
            if name.type == "aliased_import":
                target, alias = name.child_by_field_name("name"), name.child_by_field_name("alias")
                if target is not None:
                    out.append(Import(_dotted(source, target), None, _text(source, alias) if alias else None, 0, line))
            elif name.type == "dotted_name":
                module = _dotted(source, name)
                # ``import a.b`` binds ``a``, not ``b``: its own local name is the dotted path.
                out.append(Import(module, None, module if "." in module else None, 0, line))
                if "." in module:  # ``import a.b`` binds ``a``: the package, through which a.b.x is reached
                    out.append(Import(module.split(".", 1)[0], None, None, 0, line))
        return out
    # import_from_statement / future_import_statement
    level, module = 0, "__future__"
    module_node = node.child_by_field_name("module_name")
    if module_node is not None:
        if module_node.type == "relative_import":
            module = ""
            for child in module_node.children:
                if child.type == "import_prefix":
                    level = child.end_byte - child.start_byte
                elif child.type == "dotted_name":
                    module = _dotted(source, child)
        else:
            module = _dotted(source, module_node)
    out = []
    for child in node.children:
        if child.type == "wildcard_import":
            out.append(Import(module, "*", None, level, line))
    for name in node.children_by_field_name("name"):
        if name.type == "aliased_import":
            target, alias = name.child_by_field_name("name"), name.child_by_field_name("alias")
            if target is not None:
                out.append(Import(module, _dotted(source, target), _text(source, alias) if alias else None, level, line))
        elif name.type == "dotted_name":
            out.append(Import(module, _dotted(source, name), None, level, line))
    return out


MEMO_ENTRIES = 256
"""The memo tables' bound until the context engine sets ``contextCacheEntries``."""
_IMPORTS_BY_TEXT: Lru[tuple[str, bytes], tuple[Import, ...]] = Lru(MEMO_ENTRIES)


def _imports_cached(node: Node, source: bytes) -> tuple[Import, ...]:
    """``_imports_of`` memoised on the statement's text (the same statements come back on every
    keystroke); only the line number is refreshed."""
    key = (node.type, source[node.start_byte:node.end_byte])
    line = node.start_point.row
    found = _IMPORTS_BY_TEXT.get(key)
    if found is None:
        found = tuple(_imports_of(node, source))
        _IMPORTS_BY_TEXT.put(key, found)
    if found and found[0].line != line:
        found = tuple(Import(i.module, i.name, i.alias, i.level, line) for i in found)
        _IMPORTS_BY_TEXT.put(key, found)
    return found


# -- the file's top-level symbols --------------------------------------------------------------


@dataclass
class _Symbols:
    defs: dict[str, Node] = field(default_factory=dict)  # function_definition / class_definition
    assigns: dict[str, Node] = field(default_factory=dict)  # the expression_statement
    imports: dict[str, list[Import]] = field(default_factory=dict)
    stars: list[Import] = field(default_factory=list)
    all: list[str] | None = None
    order: list[Node] = field(default_factory=list)  # top-level defs in source order (for outline)


def _branch_blocks(node: Node) -> list[Node]:
    """Blocks of a module-level if/try/with whose statements bind module names."""
    blocks = []
    for child in node.named_children:
        if child.type == "block":
            blocks.append(child)
        elif child.type in {"elif_clause", "else_clause", "except_clause", "except_group_clause", "finally_clause"}:
            blocks.extend(c for c in child.named_children if c.type == "block")
    return blocks


def _assigned_names(source: bytes, left: Node) -> list[str]:
    if left.type == "identifier":
        return [_text(source, left)]
    if left.type in {"pattern_list", "tuple_pattern", "list_pattern"}:
        return [n for c in left.named_children for n in _assigned_names(source, c)]
    return []


def _string_list(source: bytes, node: Node) -> list[str]:
    names = []
    for child in node.named_children:
        if child.type == "string":
            content = "".join(_text(source, c) for c in child.named_children if c.type == "string_content")
            names.append(content)
    return names


def _collect(source: bytes, container: Node, table: _Symbols, depth: int = 0) -> None:
    for node in container.named_children:
        kind = node.type
        if kind == "decorated_definition":
            inner = node.child_by_field_name("definition")
            if inner is not None:
                _add_def(source, inner, table)
        elif kind in _SCOPE_TYPES:
            _add_def(source, node, table)
        elif kind == "expression_statement":
            inner = node.named_children[0] if node.named_child_count else None
            if inner is not None and inner.type in {"assignment", "augmented_assignment"}:
                left = inner.child_by_field_name("left")
                for name in _assigned_names(source, left) if left is not None else []:
                    if name == "__all__":
                        right = inner.child_by_field_name("right")
                        if right is not None and right.type in {"list", "tuple"}:
                            found = _string_list(source, right)
                            table.all = found if inner.type == "assignment" or table.all is None else table.all + found
                    if inner.type == "assignment":
                        table.assigns.setdefault(name, node)
        elif kind in {"import_statement", "import_from_statement", "future_import_statement"}:
            for imp in _imports_of(node, source):
                if imp.name == "*":
                    table.stars.append(imp)
                elif imp.name is None and not imp.alias:
                    # ``import a.b`` binds ``a``: the package itself
                    head = imp.module.split(".", 1)[0]
                    table.imports.setdefault(head, []).append(Import(head, None, None, 0, imp.line))
                else:
                    table.imports.setdefault(imp.local_name, []).append(imp)
        elif kind in {"if_statement", "try_statement", "with_statement"} and depth < 4:
            for block in _branch_blocks(node):
                _collect(source, block, table, depth + 1)


def _add_def(source: bytes, node: Node, table: _Symbols) -> None:
    name = node.child_by_field_name("name")
    if name is None:
        return
    table.order.append(node)
    table.defs.setdefault(_text(source, name), node)


_SYMBOLS: Lru[tuple[Path, bytes], _Symbols] = Lru(MEMO_ENTRIES)
RESOLVE_TTL_S = 5.0
_RESOLVED: Lru[tuple, tuple[float, tuple[Path, ...]]] = Lru(MEMO_ENTRIES)


def _symbols(parsed: ParsedFile) -> _Symbols:
    key = (parsed.path, parsed.source)  # bytes cache their hash: cheap after the first lookup
    table = _SYMBOLS.get(key)
    if table is not None:
        return table
    table = _Symbols()
    if parsed.tree is not None:
        _collect(parsed.source, parsed.tree.root_node, table)
    _SYMBOLS.put(key, table)
    return table


# -- skeletons -------------------------------------------------------------------------------


def _body(node: Node) -> Node | None:
    return node.child_by_field_name("body")


def _header_end(node: Node) -> int:
    """End byte of a def/class header: its ``:`` before the body."""
    body = _body(node)
    colon = body.prev_sibling if body is not None else None
    if colon is not None and colon.type == ":":
        return colon.end_byte
    return body.start_byte if body is not None else node.end_byte


def _signature_lines(source: bytes, node: Node) -> list[str]:
    return _lines(source, node.start_byte, _header_end(node))


def _docstring(body: Node | None) -> Node | None:
    if body is None or not body.named_child_count:
        return None
    first = body.named_children[0]
    if first.type == "expression_statement" and first.named_child_count == 1 and first.named_children[0].type == "string":
        return first.named_children[0]
    return None


def _quote_of(text: str) -> str:
    body = text.lstrip(_STRING_PREFIX_CHARS)
    for quote in ('"""', "'''", '"', "'"):
        if body.startswith(quote):
            return quote
    return '"""'


def _doc_lines(source: bytes, doc: Node, max_lines: int) -> list[str]:
    """The docstring's source lines, cut after its first paragraph or ``max_lines``, closed."""
    lines = _lines(source, doc.start_byte, doc.end_byte)
    if len(lines) <= 1:
        return lines
    quote = _quote_of(_text(source, doc))
    kept = [lines[0]]
    for line in lines[1:max_lines]:
        if not line.strip():
            break
        kept.append(line)
    if len(kept) < len(lines):
        kept.append(_indent_of(lines[0]) + quote)
    return kept


def _first_doc_line(source: bytes, doc: Node, indent: str) -> str:
    text = _text(source, doc)
    quote = _quote_of(text)
    inner = text.lstrip(_STRING_PREFIX_CHARS)[len(quote):]
    if inner.endswith(quote):
        inner = inner[: -len(quote)]
    first = next((line.strip() for line in inner.split("\n") if line.strip()), "")
    if quote in first or first.endswith("\\") or (len(quote) == 1 and "\\" in first):
        first = first.replace("\\", "").replace(quote, "")
    return f'{indent}{quote if len(quote) == 3 else chr(34) * 3}{first}{quote if len(quote) == 3 else chr(34) * 3}'


def _body_indent(source: bytes, node: Node, header: list[str]) -> str:
    body = _body(node)
    if body is not None and body.named_child_count and body.start_point.row > node.start_point.row + len(header) - 1:
        return _indent_of(_lines(source, body.start_byte, body.start_byte)[0])
    return _indent_of(header[0]) + "    "


def _body_on_header_line(node: Node) -> bool:
    body = _body(node)
    return body is not None and body.named_child_count > 0 and body.start_point.row == node.end_point.row \
        and body.start_point.row == _end_row_of_header(node)


def _end_row_of_header(node: Node) -> int:
    body = _body(node)
    colon = body.prev_sibling if body is not None else None
    return colon.end_point.row if colon is not None else node.start_point.row


def _decorators(node: Node) -> list[Node]:
    parent = node.parent
    if parent is not None and parent.type == "decorated_definition":
        return [c for c in parent.named_children if c.type == "decorator"]
    return []


def _signature_and_indent(source: bytes, node: Node) -> tuple[list[str], str | None]:
    """A def's or class's signature line(s) verbatim, and the indent of the skeleton's lines
    below them; no indent when the body shares the signature's line (``def f(): ...``), whose
    signature is then the whole skeleton."""
    header = _signature_lines(source, node)
    return header, None if _body_on_header_line(node) else _body_indent(source, node, header)


def _docstring_lines(source: bytes, node: Node, max_lines: int) -> list[str]:
    doc = _docstring(_body(node))
    return _doc_lines(source, doc, max_lines) if doc is not None else []


def function_skeleton(source: bytes, node: Node, doc_lines: int = DOC_LINES) -> str:
    """Signature line(s) verbatim first, then decorators (as a comment), docstring, ``...``."""
    header, indent = _signature_and_indent(source, node)
    if indent is None:
        return "\n".join(header)
    decorators = _decorators(node)
    note = [indent + "# decorated: " + " ".join(" ".join(_text(source, d).split()) for d in decorators)] \
        if decorators else []
    return "\n".join(header + note + _docstring_lines(source, node, doc_lines) + [indent + "..."])


def _class_statements(block: Node) -> Iterator[tuple[Node, Node]]:
    """(statement, definition or assignment) for each statement of a class body that binds a
    member: a def or class (decorated ones unwrapped) or an assignment."""
    for stmt in block.named_children:
        target = stmt.child_by_field_name("definition") if stmt.type == "decorated_definition" else stmt
        if target is None:
            continue
        if target.type in _SCOPE_TYPES:
            yield stmt, target
        elif stmt.type == "expression_statement" and stmt.named_child_count and \
                stmt.named_children[0].type == "assignment":
            yield stmt, stmt.named_children[0]


def _members(source: bytes, block: Node) -> list[tuple[Node, Node]]:
    """(statement, definition or assignment) pairs a class skeleton lists: public methods and the
    dunders in KEPT_DUNDERS, nested classes, public class attributes."""
    out = []
    for stmt, target in _class_statements(block):
        if target.type == "assignment":
            left = target.child_by_field_name("left")
            if left is not None and not _text(source, left).startswith("_"):
                out.append((stmt, target))
        else:
            name_node = target.child_by_field_name("name")
            name = _text(source, name_node) if name_node is not None else ""
            if not name.startswith("_") or name in KEPT_DUNDERS:
                out.append((stmt, target))
    return out


def _member_entries(source: bytes, block: Node, indent: str, budget: int) -> list[str]:
    """One entry per member: signature line(s) verbatim; with the first docstring line while
    the class is small, else ``: ...`` on the signature (one line per method). Members stop,
    with a last ``...``, where they would pass ``budget`` characters."""
    members = _members(source, block)
    with_docs = len(members) <= MEMBER_DOCS_UP_TO
    out: list[str] = []
    used = 0
    for count, (stmt, target) in enumerate(members):
        entry = _member_entry(source, stmt, target, with_docs)
        size = sum(len(line) + 1 for line in entry)
        if count >= CLASS_MEMBERS or used + size > budget:
            out.append(indent + "...")
            break
        out.extend(entry)
        used += size
    return out


def _member_entry(source: bytes, stmt: Node, target: Node, with_docs: bool) -> list[str]:
    if target.type == "assignment":
        lines = _lines(source, stmt.start_byte, stmt.end_byte)
        left = target.child_by_field_name("left")
        if len(lines) <= ASSIGNMENT_LINES:
            return lines
        return [_indent_of(lines[0]) + _text(source, left) + " = ..."] if left is not None else []
    out: list[str] = []
    for decorator in _decorators(target):
        out.extend(_lines(source, decorator.start_byte, decorator.end_byte))
    header = _signature_lines(source, target)
    if _body_on_header_line(target):
        return out + header
    doc = _docstring(_body(target)) if target.type == "function_definition" and with_docs else None
    if doc is not None:
        return out + header + [_first_doc_line(source, doc, _body_indent(source, target, header))]
    return out + header[:-1] + [header[-1] + " ..."]


def class_skeleton(source: bytes, node: Node, doc_lines: int = DOC_LINES) -> str:
    """Header verbatim, docstring, class attributes, method signatures (+ first doc line)."""
    header, indent = _signature_and_indent(source, node)
    if indent is None:
        return "\n".join(header)
    docstring = _docstring_lines(source, node, doc_lines)
    budget = CLASS_CHARS - sum(len(line) + 1 for line in header + docstring)
    body = _body(node)
    members = _member_entries(source, body, indent, budget) if body is not None else []
    ellipsis = [indent + "..."] if not docstring and not members else []
    return "\n".join(header + docstring + members + ellipsis)


def _assignment_skeleton(source: bytes, stmt: Node) -> str:
    lines = _lines(source, stmt.start_byte, stmt.end_byte)
    if len(lines) <= ASSIGNMENT_LINES:
        return "\n".join(lines)
    return "\n".join(lines[:ASSIGNMENT_LINES - 1] + [_indent_of(lines[1]) + "..."])


def _skeleton(source: bytes, node: Node) -> str:
    return class_skeleton(source, node) if node.type == "class_definition" else function_skeleton(source, node)


# -- search paths ------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def python_search_paths(executable: str | None = None) -> tuple[Path, ...]:
    """The interpreter's stdlib and site-packages folders, from ``sysconfig`` (never by importing
    anything else). ``executable`` names another interpreter (a venv's python), asked the same
    way in a subprocess; on failure the running interpreter's paths are used."""
    paths: dict | None = None
    if executable and Path(executable).resolve() != Path(sys.executable).resolve():
        try:
            done = subprocess.run(
                [executable, "-I", "-S", "-c", "import json, sysconfig; print(json.dumps(sysconfig.get_paths()))"],
                capture_output=True, text=True, timeout=10, check=True,
            )
            paths = json.loads(done.stdout)
        except (OSError, subprocess.SubprocessError, ValueError):
            paths = None
    if paths is None:
        paths = sysconfig.get_paths()
    ordered = []
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        value = paths.get(key)
        if value and Path(value).is_dir() and Path(value) not in ordered:
            ordered.append(Path(value))
    return tuple(ordered)


# -- the language module ---------------------------------------------------------------------


class PythonSupport:
    languages = ("python",)

    def caches(self) -> dict[str, Lru]:
        return {"pythonImports": _IMPORTS_BY_TEXT, "pythonSymbols": _SYMBOLS, "pythonResolutions": _RESOLVED}

    # scopes ------------------------------------------------------------------------------

    def scopes(self, tree: Tree, source: bytes, byte_offset: int) -> list[Scope]:
        """Module, then each class/function around the cursor, outermost first.

        On a line with nothing before the cursor yet (a fresh line after a body: the parser has
        already closed the block), a definition that ends above counts as long as the cursor is
        indented deeper than its ``def``/``class``. Headers that the parser could not attach
        (inside ERROR nodes while a line is being typed) count by the same rule.
        """
        offset = max(0, min(byte_offset, len(source)))
        result = [Scope("module", "", "", 0, len(source))]
        columns = [-1]
        line_start = _line_start(source, offset)
        before = source[line_start:offset]
        cursor_column = len(before) - len(before.lstrip(b" \t"))

        def push(kind: str, name: str, header: str, start: int, end: int, column: int) -> None:
            while len(columns) > 1 and columns[-1] >= column:
                columns.pop()
                result.pop()
            if kind == "function" and result[-1].kind == "class":
                kind = "method"
            result.append(Scope(kind, name, header, start, end))
            columns.append(column)

        anchor = offset
        if not before.strip():  # nothing typed on this line yet: start from the last code above
            anchor = _last_code_byte(source, line_start)
        if anchor < 0:
            return result
        # (descendant_for_byte_range, not first_named_child_for_byte: in tree-sitter 0.26 the
        # latter can return an invalid node that crashes the interpreter when touched)
        deepest = tree.root_node.descendant_for_byte_range(anchor, min(anchor + 1, len(source)))
        path: list[Node] = []
        while deepest is not None:
            path.append(deepest)
            deepest = deepest.parent
        path.reverse()
        for depth, node in enumerate(path):
            child = path[depth + 1] if depth + 1 < len(path) else None
            if node.type in _SCOPE_TYPES:
                column = _column_of(source, node.start_byte)
                if not (node.start_byte <= offset < node.end_byte or column < cursor_column):
                    break
                name = node.child_by_field_name("name")
                push("class" if node.type == "class_definition" else "function",
                     _text(source, name) if name is not None else "",
                     source[node.start_byte:_header_end(node)].decode("utf-8", "replace"),
                     node.start_byte, node.end_byte, column)
            if node.has_error:
                for keyword_node in self._broken_headers(node, child, offset):
                    column = _column_of(source, keyword_node.start_byte)
                    if column < cursor_column:
                        header_end = _broken_header_end(source, keyword_node, offset)
                        header = source[keyword_node.start_byte:header_end].decode("utf-8", "replace").rstrip()
                        push("class" if keyword_node.type == "class" else "function",
                             self._broken_name(source, keyword_node), header, keyword_node.start_byte,
                             node.end_byte, column)
        return result

    @staticmethod
    def _broken_headers(node: Node, child: Node | None, offset: int) -> list[Node]:
        """``def``/``class`` keywords inside ERROR nodes before the cursor: headers the parser
        could not attach to a definition while the user is typing."""
        holders: list[Node] = []
        if node.type == "ERROR":
            holders.append(node)
        sibling = child.prev_sibling if child is not None else (node.children[-1] if node.child_count else None)
        steps = 0
        found: list[Node] = []
        while sibling is not None and steps < 20:
            if sibling.type == "ERROR" and sibling.start_byte < offset:
                found.append(sibling)
            sibling = sibling.prev_sibling
            steps += 1
        holders.extend(reversed(found))
        out: list[Node] = []
        for holder in holders:
            stack = [holder]
            while stack:
                current = stack.pop()
                for grandchild in reversed(current.children):
                    if grandchild.start_byte >= offset:
                        continue
                    if grandchild.type in {"def", "class"}:
                        out.append(grandchild)
                    elif grandchild.type == "ERROR":
                        stack.append(grandchild)
        out.sort(key=lambda item: item.start_byte)
        return out

    @staticmethod
    def _broken_name(source: bytes, keyword_node: Node) -> str:
        nxt = keyword_node.next_sibling
        if nxt is None and keyword_node.parent is not None and keyword_node.parent.type == "ERROR":
            nxt = keyword_node.parent.next_sibling
        while nxt is not None and nxt.type not in {"identifier"}:
            if nxt.named_child_count:
                nxt = nxt.named_children[0]
                continue
            return ""
        return _text(source, nxt) if nxt is not None else ""

    # imports -----------------------------------------------------------------------------

    def imports(self, tree: Tree, source: bytes) -> list[Import]:
        """Every import statement, in source order, nested ones included.

        A query over the whole tree costs ~9 ms on a 10,000-line file, too much for each
        keystroke; every import statement holds an ``import`` keyword token, so we visit only
        the places where those bytes occur and let the tree say which are that token (not a
        string, comment or ``importlib``): ~0.4 ms, same result.
        """
        root = tree.root_node
        out: list[Import] = []
        position = source.find(b"import")
        while position != -1:
            token = root.descendant_for_byte_range(position, position + 6)
            if token is not None and token.type == "import":
                statement = token.parent
                if statement is not None and statement.type in _IMPORT_STATEMENTS:
                    out.extend(_imports_cached(statement, source))
            position = source.find(b"import", position + 6)
        return out

    # references --------------------------------------------------------------------------

    def references(self, tree: Tree, source: bytes, start_byte: int, end_byte: int, cursor_line: int) -> list[Reference]:
        """Name chains in [start_byte, end_byte), nearest ``cursor_line`` first.

        A name that reaches ``end_byte`` is left out (or cut from its chain): when the range
        ends at the cursor, that is the word being typed, which counts only once complete.
        """
        cursor = QueryCursor(NAMES_QUERY)
        cursor.set_byte_range(start_byte, end_byte)
        best: dict[tuple[str, ...], tuple[int, int, int]] = {}
        bound: set[str] = set()  # local names: parameters, assignments, loop targets …
        functions = [s for s in self.scopes(tree, source, end_byte) if s.kind in {"function", "method"}]
        local_from = functions[-1].start_byte if functions else 1 << 62  # … of the cursor's function
        for node in cursor.captures(tree.root_node).get("name", []):
            if node.start_byte < start_byte or node.end_byte >= end_byte:
                continue
            parent = node.parent
            if parent is None:
                continue
            ptype = parent.type
            if ptype == "attribute":
                if parent.start_byte != node.start_byte:
                    continue  # the member part: the chain from the root covers it
            elif ptype in _PARAMETER_PARENTS:
                if node.start_byte >= local_from:
                    bound.add(_text(source, node))
                continue
            elif ptype in _NOT_REFERENCES:
                continue
            elif ptype in _NAMED_BY_FIELD and parent.child_by_field_name("name") == node:
                if ptype in {"default_parameter", "typed_default_parameter"} and node.start_byte >= local_from:
                    bound.add(_text(source, node))
                continue
            elif ptype in _BINDING_PARENTS and parent.child_by_field_name("left") == node:
                if node.start_byte >= local_from:
                    bound.add(_text(source, node))
                continue
            elif ptype in _BINDING_LISTS:
                grand = parent.parent
                if grand is not None and grand.type in _BINDING_PARENTS and grand.child_by_field_name("left") == parent:
                    if node.start_byte >= local_from:
                        bound.add(_text(source, node))
                    continue
            parts = [_text(source, node)]
            current = node
            while True:
                up = current.parent
                if up is None or up.type != "attribute" or up.start_byte != current.start_byte:
                    break
                member = up.child_by_field_name("attribute")
                if member is None or member.end_byte >= end_byte or member.start_byte < current.end_byte:
                    break
                parts.append(_text(source, member))
                current = up
            if parts[0] in _NOISE and (len(parts) == 1 or parts[0] not in {"self", "cls"}):
                continue
            key = tuple(parts)
            row = node.start_point.row
            rank = (abs(row - cursor_line), 1 if row > cursor_line else 0, -node.start_byte)
            if key not in best or rank < best[key]:
                best[key] = rank
        ordered = sorted(((parts, rank) for parts, rank in best.items()
                          if parts[0] not in bound or parts[0] in {"self", "cls"}), key=lambda item: item[1])
        return [Reference(parts, rank[0]) for parts, rank in ordered]

    # resolution --------------------------------------------------------------------------

    def resolve(self, imp: Import, from_path: Path, workspace: Workspace) -> list[Path]:
        """Candidate files, best first. Answers are kept for RESOLVE_TTL_S seconds (a keystroke
        resolves the same imports again; each costs a few dozen file-system probes)."""
        key = (imp.module, imp.name, imp.level, from_path.parent, tuple(workspace.roots),
               tuple(workspace.search_paths("python")))
        now = time.monotonic()
        cached = _RESOLVED.get(key)
        if cached is not None and now - cached[0] < RESOLVE_TTL_S:
            return list(cached[1])
        found = self._resolve(imp, from_path, workspace)
        _RESOLVED.put(key, (now, tuple(found)))
        return found

    def _resolve(self, imp: Import, from_path: Path, workspace: Workspace) -> list[Path]:
        module = MODULE_ALIASES.get(imp.module, imp.module) if imp.level == 0 else imp.module
        parts = [p for p in module.split(".") if p] if module else []
        if imp.level > 0:
            base = from_path.parent
            for _ in range(imp.level - 1):
                base = base.parent
            bases = [base]
        else:
            if not parts:
                return []
            bases = []
            for root in workspace.roots:
                bases.append(root)
                src = root / "src"
                if workspace.is_dir(src):
                    bases.append(src)
            bases.extend(workspace.search_paths("python"))
            bases.append(from_path.parent)  # a script's own folder is on its sys.path
        out: list[Path] = []
        for base in bases:
            modules = _module_files(workspace, base, parts)
            submodules: list[Path] = []
            if imp.name and imp.name != "*":
                submodules = _module_files(workspace, base, parts + [imp.name])
            if submodules and not (modules and _defines(workspace, modules[0], imp.name)):
                found = submodules + modules
            else:
                found = modules + submodules
            for path in found:
                if path not in out:
                    out.append(path)
        return out

    # definitions -------------------------------------------------------------------------

    def definition(self, parsed: ParsedFile, name: str, workspace: Workspace) -> Definition | None:
        return self._definition(parsed, name, workspace, MAX_HOPS, set())

    def _definition(self, parsed: ParsedFile, name: str, workspace: Workspace, hops: int,
                    seen: set[tuple[Path, str]]) -> Definition | None:
        if (parsed.path, name) in seen or parsed.tree is None:
            return None
        seen.add((parsed.path, name))
        table = _symbols(parsed)
        source = parsed.source
        node = table.defs.get(name)
        if node is not None:
            return Definition(parsed.path, name, _skeleton(source, node), node.start_point.row)
        if hops > 0:
            for imp in table.imports.get(name, []):
                if imp.name is None:
                    continue  # a module, not a definition
                found = self._follow(imp, imp.name, parsed.path, workspace, hops, seen)
                if found is not None:
                    return found
        stmt = table.assigns.get(name)
        if stmt is not None:
            skeleton = _assignment_skeleton(source, stmt)
            target = self._alias_target(parsed, stmt, workspace, hops, seen)
            if target is not None:
                skeleton += "\n" + target.skeleton
            return Definition(parsed.path, name, skeleton, stmt.start_point.row)
        if hops > 0:
            for imp in table.stars:
                found = self._follow(imp, name, parsed.path, workspace, hops, seen, star=True)
                if found is not None:
                    return found
        return None

    def _follow(self, imp: Import, name: str, from_path: Path, workspace: Workspace, hops: int,
                seen: set[tuple[Path, str]], star: bool = False) -> Definition | None:
        for path in self.resolve(imp, from_path, workspace)[:4]:
            target = workspace.parsed(path)
            if target is None or target.tree is None:
                continue
            if star:
                exported = _symbols(target).all
                if exported is not None and name not in exported:
                    continue
                if exported is None and name.startswith("_"):
                    continue
            found = self._definition(target, name, workspace, hops - 1, seen)
            if found is not None:
                return found
        return None

    def _alias_target(self, parsed: ParsedFile, stmt: Node, workspace: Workspace, hops: int,
                      seen: set[tuple[Path, str]]) -> Definition | None:
        """``loads = _loads`` / ``x = c_x or py_x``: the definition of the right-hand name."""
        assignment = stmt.named_children[0]
        right = assignment.child_by_field_name("right")
        if right is None or hops <= 0:
            return None
        candidates: list[Node] = []
        if right.type == "identifier":
            candidates = [right]
        elif right.type == "boolean_operator":
            candidates = [c for c in right.named_children if c.type == "identifier"]
        for candidate in reversed(candidates):
            found = self._definition(parsed, _text(parsed.source, candidate), workspace, hops - 1, seen)
            if found is not None and found.skeleton.lstrip().startswith(("def ", "async def ", "class ")):
                return found
        return None

    def member(self, parsed: ParsedFile, owner: str, name: str) -> Definition | None:
        if parsed.tree is None:
            return None
        owner_node = _symbols(parsed).defs.get(owner)
        if owner_node is None or owner_node.type != "class_definition":
            return None
        body = _body(owner_node)
        if body is None:
            return None
        source = parsed.source
        for stmt, target in _class_statements(body):
            if target.type == "assignment":
                left = target.child_by_field_name("left")
                if left is not None and name in _assigned_names(source, left):
                    return Definition(parsed.path, name, _assignment_skeleton(source, stmt), stmt.start_point.row)
            else:
                name_node = target.child_by_field_name("name")
                if name_node is not None and _text(source, name_node) == name:
                    return Definition(parsed.path, name, _skeleton(source, target), target.start_point.row)
        return None

    def outline(self, parsed: ParsedFile) -> str:
        if parsed.tree is None:
            return ""
        source = parsed.source
        lines: list[str] = []
        for node in _symbols(parsed).order:
            header = _signature_lines(source, node)
            if _body_on_header_line(node):
                lines.extend(header)
            else:
                lines.extend(header[:-1] + [header[-1] + " ..."])
        return "\n".join(lines)


def _last_code_byte(source: bytes, before: int) -> int:
    """The last non-blank byte before ``before`` (-1 if none)."""
    index = before - 1
    while index >= 0 and source[index] in b" \t\r\n\f":
        index -= 1
    return index


def _broken_header_end(source: bytes, keyword_node: Node, offset: int) -> int:
    """A header the parser could not attach ends with its line (or at the cursor on that line)."""
    return max(keyword_node.end_byte, min(_line_end(source, keyword_node.start_byte), offset))


def _module_files(workspace: Workspace, base: Path, parts: list[str]) -> list[Path]:
    """The files a dotted module path names under ``base``: package before module (as Python's
    finder does), stub before source; a ``<pkg>-stubs`` package first where one is installed."""
    if not parts:
        return [p for p in (base / "__init__.pyi", base / "__init__.py") if workspace.is_file(p)]
    out = []
    for top in (base / f"{parts[0]}-stubs", base / parts[0]):
        folder = top.joinpath(*parts[1:]) if len(parts) > 1 else top
        for candidate in (folder / "__init__.pyi", folder / "__init__.py"):
            if workspace.is_file(candidate):
                out.append(candidate)
        parent, leaf = folder.parent, folder.name
        for candidate in (parent / f"{leaf}.pyi", parent / f"{leaf}.py"):
            if workspace.is_file(candidate):
                out.append(candidate)
    return out


def _defines(workspace: Workspace, path: Path, name: str) -> bool:
    parsed = workspace.parsed(path)
    if parsed is None or parsed.tree is None:
        return False
    table = _symbols(parsed)
    return name in table.defs or name in table.assigns or name in table.imports


__all__ = ["PythonSupport", "python_search_paths", "function_skeleton", "class_skeleton"]

