"""The tree-sitter machinery every brace language shares.

``BraceLanguage`` holds what C, C++, JavaScript/TypeScript, Rust, Go and Java have in common:
the enclosing scopes (with a token-level fallback where the code being typed left an ERROR node),
the name chains used near the cursor, doc comments and skeletons (function bodies become
``{ ... }``, comments and blank lines inside a declaration are dropped). Each language module
configures it with its node types and adds imports, resolution and the special cases of its
definitions.
"""
from __future__ import annotations

import os
from functools import cache, lru_cache
from pathlib import Path
from typing import Iterable, Iterator

from tree_sitter import Language, Node, Query, QueryCursor, Tree

from .base import Definition, Import, ParsedFile, Reference, Scope, Workspace

ELIDED_BODY = "{ ... }"
LONG_VALUE_LINES = 6  # a literal value (object, array, initializer) longer than this is elided
REEXPORT_HOPS = 3  # files a definition is followed through re-exports (`export … from`, `pub use`)
_DROP = "\x00"  # marks text removed from a skeleton (comments) so that emptied lines go too
_DECLARING_KEYWORDS = frozenset(
    {"class", "interface", "function", "fn", "func", "struct", "enum", "trait", "const", "let", "var", "type",
     "mod", "namespace", "union", "record", "static"}
)
_PARAMETER_LISTS = frozenset({"formal_parameters", "parameters", "parameter_list"})
_NAME_LEAVES = frozenset(
    {"identifier", "type_identifier", "field_identifier", "property_identifier", "namespace_identifier", "package_identifier"}
)


# -- queries -------------------------------------------------------------------------------


@cache
def compiled_query(language: Language, source: str) -> Query:
    """A query compiled once per grammar and source."""
    return Query(language, source)


@cache
def types_query(language: Language, types: tuple[str, ...], capture: str) -> Query | None:
    """A query capturing every node of ``types`` that the grammar has (C lacks C++'s types …)."""
    present = [t for t in types if language.id_for_node_kind(t, True)]
    if not present:
        return None
    return Query(language, "[" + " ".join(f"({t})" for t in present) + f"] @{capture}")


def captures(query: Query | None, node: Node, start: int | None = None, end: int | None = None) -> dict[str, list[Node]]:
    if query is None:
        return {}
    cursor = QueryCursor(query)
    if start is not None and end is not None:
        cursor.set_byte_range(start, end)
    return cursor.captures(node)


def matches(query: Query, node: Node) -> list[dict[str, list[Node]]]:
    return [found for _, found in QueryCursor(query).matches(node)]


# -- small helpers ---------------------------------------------------------------------------


def text(node: Node | None, source: bytes) -> str:
    if node is None:
        return ""
    return source[node.start_byte:node.end_byte].decode("utf-8", "replace")


def last_row(node: Node) -> int:
    """The last line a node really occupies (a line comment may end at column 0 of the next)."""
    row, column = node.end_point
    return row - 1 if column == 0 and row > node.start_point.row else row


def line_indent(source: bytes, byte: int) -> bytes:
    """The whitespace between the start of the line and ``byte`` (b"" if code precedes it)."""
    start = source.rfind(b"\n", 0, byte) + 1
    prefix = source[start:byte]
    return prefix if not prefix.strip() else b""


def splice(source: bytes, start: int, end: int, replacements: list[tuple[int, int, str]]) -> str:
    """``source[start:end]`` with non-overlapping ranges replaced."""
    parts: list[bytes] = []
    position = start
    for r_start, r_end, new in sorted(replacements):
        if r_start < position or r_end > end:
            continue  # nested in (or overlapping) an earlier replacement
        parts.append(source[position:r_start])
        parts.append(new.encode())
        position = r_end
    parts.append(source[position:end])
    return b"".join(parts).decode("utf-8", "replace")


def tidy(rendered: str, indent: bytes) -> str:
    """Drop the lines a removal emptied and blank lines; dedent by the declaration's indent."""
    prefix = indent.decode("utf-8", "replace")
    out: list[str] = []
    for index, line in enumerate(rendered.split("\n")):
        if _DROP in line:
            line = line.replace(_DROP, "")
            if not line.strip():
                continue
        line = line.rstrip()
        if not line.strip():
            continue
        if index and prefix and line.startswith(prefix):
            line = line[len(prefix):]
        out.append(line)
    return "\n".join(out)


def read_text(path: Path) -> str | None:
    """A configuration file (tsconfig.json, go.mod, Cargo.toml), cached on its mtime."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return _read_cached(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=256)
def _read_cached(path: Path, mtime_ns: int, size: int) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def list_dir(path: Path) -> list[Path]:
    try:
        return sorted(path.iterdir())
    except OSError:
        return []


def walk_up(start: Path, limit: int = 40) -> Iterator[Path]:
    """``start`` and its parents."""
    current = start
    for _ in range(limit):
        yield current
        if current.parent == current:
            return
        current = current.parent


def unique_paths(paths: Iterable[Path]) -> list[Path]:
    """Normalised (``a/../b`` → ``b``, without resolving links), first occurrence kept."""
    seen: set[Path] = set()
    out: list[Path] = []
    for path in paths:
        path = Path(os.path.normpath(path))
        if path not in seen:
            seen.add(path)
            out.append(path)
    return out


# -- the shared machinery ------------------------------------------------------------------------


class BraceLanguage:
    """Tree-sitter support common to the brace languages; subclasses set the node types."""

    languages: tuple[str, ...] = ()

    comment_types: frozenset[str] = frozenset({"comment"})
    doc_prefix_types: frozenset[str] = frozenset()  # siblings kept with the doc comment (attributes)
    scope_kinds: dict[str, str] = {}  # node type → Scope.kind
    class_kinds = frozenset({"class", "struct", "interface", "trait", "impl", "enum", "union"})
    function_types: frozenset[str] = frozenset()  # nodes whose block body a skeleton elides
    body_types: frozenset[str] = frozenset()  # the block node types that are elided
    long_value_types: frozenset[str] = frozenset()  # literals elided when longer than LONG_VALUE_LINES
    # References: chain node type → (left field or None, right field); a wrapper (generic type)
    # stands for its named field.
    chain_fields: dict[str, tuple[str, str]] = {}
    wrapper_fields: dict[str, str] = {}
    extra_chain_types: frozenset[str] = frozenset()  # chains a language flattens itself (_flatten)
    head_types: tuple[str, ...] = ("identifier",)
    part_types: frozenset[str] = frozenset({"identifier"})
    optional_left: frozenset[str] = frozenset()  # chain types whose left part may be absent (Java `m()`)
    name_ref_parents: frozenset[str] = frozenset()  # parents whose `name` field is a use, not a declaration
    decl_fields: tuple[str, ...] = ("name", "pattern", "declarator", "alias")
    skip_ancestor_types: frozenset[str] = frozenset()  # import/package statements: no references
    namespace_types: frozenset[str] = frozenset()  # containers definition() also searches
    unsearched_types: frozenset[str] = frozenset()  # never a declaration find() returns
    noise: frozenset[str] = frozenset()  # builtins never worth a lookup (alone or as a chain's head)
    self_names: frozenset[str] = frozenset({"this", "self", "super", "Self"})  # kept as chain heads
    # ERROR recovery: keyword token → scope kind; tokens that open a control block.
    scope_keywords: dict[str, str] = {}
    control_keywords: frozenset[str] = frozenset(
        {"if", "else", "for", "while", "do", "switch", "try", "catch", "finally", "match", "loop",
         "select", "case", "default", "unsafe", "return", "synchronized", "new", "async", "static", "extern"}
    )

    def caches(self) -> dict:
        return {}  # config files (read_text) are few per workspace: lru_cache(256) bounds them

    # -- hooks a language overrides ---------------------------------------------------------------

    def module_scope(self, tree: Tree, source: bytes) -> Scope:
        return Scope("module", "", "", 0, len(source))

    def body(self, node: Node) -> Node | None:
        """The block of a scope / the body a skeleton elides."""
        found = node.child_by_field_name("body")
        if found is None:
            for child in reversed(node.named_children):
                if child.type in self.body_types:
                    return child
        return found

    def names(self, node: Node, source: bytes) -> list[str]:
        """The names a declaration binds (top level or member)."""
        name = node.child_by_field_name("name")
        return [text(name, source)] if name is not None else []

    def unwrap(self, node: Node) -> list[Node] | None:
        """The declarations inside a wrapper (export statement, #ifdef …), or None if not one."""
        return None

    def outer(self, node: Node) -> Node:
        """The node a declaration's text starts with (``export class …``, ``template <…> …``)."""
        return node

    def members(self, container: Node, source: bytes) -> list[Node]:
        body = self.body(container)
        if body is None:
            return []
        return self.flatten(body.named_children)

    # -- scopes -----------------------------------------------------------------------------------

    def scopes(self, tree: Tree, source: bytes, byte_offset: int) -> list[Scope]:
        root = tree.root_node
        offset = max(0, min(byte_offset, len(source)))
        deepest = root.descendant_for_byte_range(offset, offset) or root
        chain: list[Node] = []
        node: Node | None = deepest
        while node is not None:
            chain.append(node)
            node = node.parent
        chain.reverse()

        error_index = next((i for i, n in enumerate(chain) if n.type == "ERROR"), None)
        error: Node | None = chain[error_index] if error_index is not None else None
        above, below = chain, []
        if error is not None:
            above, below = chain[:error_index], chain[error_index + 1:]
        else:
            last = self._last_child_before(chain[-1], offset)
            if last is not None and last.type == "ERROR":
                error = last

        found: list[Scope] = [self.module_scope(tree, source)]
        self._proper_scopes(above, source, found)
        if error is not None:
            below_scopes = [n for n in below if n.type in self.scope_kinds and self.body(n) is not None]
            scan_end = below_scopes[0].start_byte if below_scopes else offset
            start = error.prev_sibling if error.prev_sibling is not None and error.prev_sibling.type not in self.comment_types else error
            for kind, name, header, s_start, s_end in self._recover(start, error, source, scan_end):
                if kind == "function" and found[-1].kind in self.class_kinds:
                    kind = "method"
                found.append(Scope(kind, name, header, s_start, s_end))
            self._proper_scopes(below, source, found)
        return found

    def _proper_scopes(self, chain: list[Node], source: bytes, found: list[Scope]) -> None:
        for node in chain:
            kind = self.scope_kinds.get(node.type)
            if kind is None:
                continue
            scope = self.scope(node, kind, source)
            if scope is None:
                continue
            if scope.kind == "function" and found[-1].kind in self.class_kinds:
                scope = Scope("method", scope.name, scope.header, scope.start_byte, scope.end_byte)
            found.append(scope)

    def scope(self, node: Node, kind: str, source: bytes) -> Scope | None:
        body = self.body(node)
        if body is None or body.end_byte <= body.start_byte:
            return None
        start = self.outer(node).start_byte
        end = body.start_byte + 1 if source[body.start_byte:body.start_byte + 1] == b"{" else body.start_byte
        header = source[start:end].decode("utf-8", "replace").rstrip()
        names = self.names(node, source)
        return Scope(kind, names[0] if names else "", header, start, node.end_byte)

    @staticmethod
    def _last_child_before(node: Node, offset: int) -> Node | None:
        last = None
        for child in node.children:
            if child.start_byte >= offset:
                break
            last = child
        return last

    def _leaves(self, nodes: list[Node], end: int) -> Iterator[Node]:
        stack = list(reversed(nodes))
        while stack:
            node = stack.pop()
            if node.start_byte >= end or node.type in self.comment_types:
                continue
            if node.child_count == 0:
                if not node.is_missing:
                    yield node
                continue
            stack.extend(reversed(node.children))

    def _recover(self, first: Node, error: Node, source: bytes, end: int) -> list[tuple[str, str, str, int, int]]:
        """Scopes left open in broken code: match braces over the tokens, read each header."""
        nodes = [first] if first == error else [first, error]
        tokens = list(self._leaves(nodes, end))
        stack: list[tuple[int, int]] = []
        segment = 0
        for index, token in enumerate(tokens):
            kind = token.type
            if kind == "{":
                stack.append((segment, index))
                segment = index + 1
            elif kind == "}":
                if stack:
                    stack.pop()
                segment = index + 1
            elif kind == ";":
                segment = index + 1
        found = []
        for seg_start, brace in stack:
            classified = self._classify(tokens[seg_start:brace], source)
            if classified is None:
                continue
            kind, name, head = classified
            header_start = self._line_start_token(tokens[seg_start:brace], head).start_byte
            header = source[header_start:tokens[brace].end_byte].decode("utf-8", "replace")
            found.append((kind, name, header, header_start, error.end_byte))
        return found

    @staticmethod
    def _line_start_token(segment: list[Node], head: Node) -> Node:
        row = head.start_point.row
        for token in segment:
            if token.start_point.row == row:
                return token
        return head

    def _classify(self, segment: list[Node], source: bytes) -> tuple[str, str, Node] | None:
        if not segment:
            return None
        keyword_index = None
        for index, token in enumerate(segment):
            if not token.is_named and (token.type in self.scope_keywords or token.type in self.control_keywords):
                if token.type == "for" and any(t.type == "impl" for t in segment[:index]):
                    continue  # `impl Trait for Type {`
                keyword_index = index
        if keyword_index is not None:
            keyword = segment[keyword_index]
            if keyword.type in self.control_keywords and keyword.type not in self.scope_keywords:
                return None
            after = segment[keyword_index + 1:]
            if any(t.type == "=" for t in after):
                return None  # an initializer: `struct p q = {`
            kind = self.scope_keywords[keyword.type]
            if kind == "impl" and any(t.type == "for" for t in after):
                after = after[[t.type for t in after].index("for") + 1:]
            name = self._first_name(after, source)
            if kind == "function" and not name:
                kind = "closure"
            return kind, name, keyword
        if segment[-1].type in ("=>", "->", "|"):
            return "closure", "", segment[0]  # `(x) => {`, `x -> {` (Java), `|x| {` (Rust)
        depth = 0
        for index in range(len(segment) - 1, -1, -1):
            token = segment[index]
            if token.type == ")":
                depth += 1
            elif token.type == "(":
                depth -= 1
                if depth == 0:
                    before = segment[index - 1] if index else None
                    if before is not None and before.is_named and before.type in _NAME_LEAVES:
                        return "function", text(before, source), before
                    if before is not None and before.type == "]":
                        return "closure", "", segment[0]  # a C++ lambda `[&](int x) {`
                    return None
        return None

    @staticmethod
    def _first_name(tokens: list[Node], source: bytes) -> str:
        depth = 0
        for token in tokens:
            if token.type in ("(", "<", "["):
                depth += 1
            elif token.type in (")", ">", "]"):
                depth -= 1
            elif depth == 0 and token.is_named and token.type in _NAME_LEAVES:
                return text(token, source)
        return ""

    # -- references -------------------------------------------------------------------------------

    def references(self, tree: Tree, source: bytes, start_byte: int, end_byte: int, cursor_line: int) -> list[Reference]:
        """Name chains in [start_byte, end_byte), nearest ``cursor_line`` first.

        A name that reaches ``end_byte`` is left out (or cut from its chain): when the range ends
        at the cursor, that is the word being typed, which counts only once complete. Names
        declared inside the cursor's function (parameters, locals) and the language's builtins
        are left out; ``this.x`` / ``self.x`` chains are kept.
        """
        query = types_query(tree.language, self.head_types, "name")
        heads = captures(query, tree.root_node, start_byte, end_byte).get("name", [])
        functions = [s for s in self.scopes(tree, source, end_byte) if s.kind in ("function", "method", "closure")]
        local_from = functions[0].start_byte if functions else 1 << 62
        best: dict[tuple[str, ...], tuple[int, int, int]] = {}
        bound: set[str] = set()
        for head in heads:
            if head.start_byte < start_byte:
                continue
            found = self._reference(head, source, end_byte)
            if found is None:
                continue
            if isinstance(found, str):
                if head.start_byte >= local_from:
                    bound.add(found)
                continue
            parts, row = found
            if parts[0] in self.noise and not (len(parts) > 1 and parts[0] in self.self_names):
                continue
            rank = (abs(row - cursor_line), 1 if row > cursor_line else 0, -head.start_byte)
            previous = best.get(parts)
            if previous is None or rank < previous:
                best[parts] = rank
        ordered = sorted(
            ((parts, rank) for parts, rank in best.items() if parts[0] not in bound or parts[0] in self.self_names),
            key=lambda item: item[1],
        )
        return [Reference(parts, rank[0]) for parts, rank in ordered]

    def _reference(self, head: Node, source: bytes, end_byte: int) -> tuple[tuple[str, ...], int] | str | None:
        """The chain starting at ``head`` and its line; the name itself when ``head`` declares
        it; None when it is no reference."""
        top = head
        while True:
            parent = top.parent
            if parent is None or not (
                parent.type in self.chain_fields or parent.type in self.wrapper_fields or parent.type in self.extra_chain_types
            ):
                break
            if self._flatten(parent) is None:
                break
            top = parent
        parent = top.parent
        if parent is not None:
            if top == head and parent.type in self.chain_fields and parent.child_by_field_name(self.chain_fields[parent.type][1]) == head:
                if not (parent.type in self.optional_left and parent.child_by_field_name(self.chain_fields[parent.type][0]) is None):
                    return None  # the member of an expression we cannot name: `f(x).member`
            if self._is_declaration(top, parent):
                return text(head, source) if top == head else None
        if self._inside_skipped(top):
            return None
        if top == head and parent is not None and parent.type == "ERROR":
            before = head.prev_sibling
            if before is not None and not before.is_named and before.type in _DECLARING_KEYWORDS:
                return text(head, source)  # `class A`, `const q` in code being typed
            following = head.next_sibling
            if following is not None and following.type in _PARAMETER_LISTS:
                return None  # `void run(int x)` in code being typed
        nodes = self._flatten(top) or [head]
        parts = []
        for node in nodes:
            if node.end_byte >= end_byte:
                break  # the name being typed at the cursor counts once complete
            parts.append(text(node, source))
        if not parts or not all(parts):
            return None
        return tuple(parts), head.start_point.row

    def _is_declaration(self, node: Node, parent: Node) -> bool:
        if parent.type in self.name_ref_parents:
            return False
        return any(parent.child_by_field_name(field) == node for field in self.decl_fields)

    def _inside_skipped(self, node: Node) -> bool:
        if not self.skip_ancestor_types:
            return False
        current = node.parent
        while current is not None:
            if current.type in self.skip_ancestor_types:
                return True
            current = current.parent
        return False

    def _flatten(self, node: Node) -> list[Node] | None:
        """The name parts of a pure chain (`a.b.c`, `A::b`), or None if any part is not a name."""
        if node.type in self.part_types or node.type in self.head_types:
            return [node]
        wrapped = self.wrapper_fields.get(node.type)
        if wrapped is not None:
            inner = node.child_by_field_name(wrapped)
            return self._flatten(inner) if inner is not None else None
        fields = self.chain_fields.get(node.type)
        if fields is None:
            return None
        left = node.child_by_field_name(fields[0])
        right = node.child_by_field_name(fields[1])
        if right is None:
            return None
        right_parts = self._flatten(right)
        if right_parts is None:
            return None
        if left is None:
            return right_parts if node.type in self.optional_left else None
        left_parts = self._flatten(left)
        return None if left_parts is None else left_parts + right_parts

    # -- declarations -----------------------------------------------------------------------------

    def flatten(self, nodes: Iterable[Node]) -> list[Node]:
        """Declarations with wrappers (export, #ifdef, extern "C") opened."""
        out: list[Node] = []
        for node in nodes:
            inner = self.unwrap(node)
            if inner is None:
                out.append(node)
            else:
                out.extend(self.flatten(inner))
        return out

    def items(self, root: Node) -> list[Node]:
        return [n for n in self.flatten(root.named_children) if n.type not in self.comment_types]

    def find(self, root: Node, name: str, source: bytes) -> Node | None:
        """A declaration of ``name``: top level first, then inside namespaces (breadth first)."""
        level = [n for n in self.items(root) if n.type not in self.unsearched_types]
        for _ in range(4):
            nested: list[Node] = []
            for node in level:
                if name in self.names(node, source):
                    return node
                if node.type in self.namespace_types:
                    nested.extend(n for n in self.members(node, source) if n.type not in self.unsearched_types)
            if not nested:
                return None
            level = nested
        return None

    def find_container(self, root: Node, owner: str, source: bytes) -> Node | None:
        """The class/struct/… ``owner`` anywhere in the file (top level first)."""
        found = self.find(root, owner, source)
        if found is not None:
            return found
        queue = self.items(root)
        for _ in range(3):
            nested: list[Node] = []
            for node in queue:
                for member in self.members(node, source):
                    if owner in self.names(member, source) and self.body(member) is not None:
                        return member
                    nested.append(member)
            queue = nested
        return None

    def doc_nodes(self, node: Node) -> list[Node]:
        """The comment block (and attributes) right above a declaration, top first."""
        found: list[Node] = []
        current = self.outer(node)
        row = current.start_point.row
        previous = current.prev_sibling
        while previous is not None and (previous.type in self.comment_types or previous.type in self.doc_prefix_types):
            if last_row(previous) < row - 1:
                break
            before = previous.prev_sibling
            if before is not None and last_row(before) == previous.start_point.row and before.type not in self.comment_types:
                break  # a trailing comment of the previous line's code
            found.append(previous)
            row = previous.start_point.row
            previous = before
        found.reverse()
        return found

    def doc(self, node: Node, source: bytes) -> str:
        nodes = self.doc_nodes(node)
        if not nodes:
            return ""
        start = nodes[0].start_byte
        indent = line_indent(source, start)
        return tidy(source[start:nodes[-1].end_byte].decode("utf-8", "replace"), indent)

    def render(self, node: Node, source: bytes, start: int | None = None) -> str:
        """A declaration's text with bodies elided, comments and blank lines dropped."""
        outer = self.outer(node)
        begin = outer.start_byte if start is None else start
        replacements: list[tuple[int, int, str]] = []
        body = self.body(node)
        newline = source.find(b"\n", outer.start_byte)
        signature_end = body.start_byte if body is not None else (newline if newline != -1 else outer.end_byte)
        self._elisions(outer, replacements, signature_end, top=True)
        rendered = splice(source, begin, outer.end_byte, replacements)
        following = outer.next_sibling
        if following is not None and following.type == ";" and following.start_byte == outer.end_byte:
            rendered += ";"
        return tidy(rendered, line_indent(source, begin))

    def _elisions(self, node: Node, out: list[tuple[int, int, str]], signature_end: int, top: bool = False) -> None:
        """Bodies to elide and comments to drop (those in the signature stay: it is verbatim)."""
        if not top and node.type in self.comment_types and node.start_byte >= signature_end:
            # a line comment may own its newline: keep it, or the next line joins this one
            out.append((node.start_byte, node.end_byte, _DROP + ("\n" if node.end_point.column == 0 else "")))
            return
        skip = None
        if node.type in self.function_types:
            body = self.body(node)
            if body is not None and body.type in self.body_types:
                out.append((body.start_byte, body.end_byte, self.elided(body)))
                skip = body
        elif node.type in self.long_value_types and node.end_point.row - node.start_point.row > LONG_VALUE_LINES:
            source_open = node.children[0].type if node.children else "{"
            close = node.children[-1].type if node.children else "}"
            out.append((node.start_byte, node.end_byte, f"{source_open} ... {close}"))
            return
        for child in node.children:
            if child != skip:
                self._elisions(child, out, signature_end)

    def elided(self, body: Node) -> str:
        return ELIDED_BODY

    def skeleton(self, node: Node, source: bytes) -> str:
        rendered = self.render(node, source)
        documentation = self.doc(node, source)
        return f"{documentation}\n{rendered}" if documentation else rendered

    def definition_of(self, parsed: ParsedFile, node: Node, name: str, extra: str = "") -> Definition:
        skeleton = self.skeleton(node, parsed.source)
        if extra:
            skeleton = f"{skeleton}\n{extra}"
        return Definition(parsed.path, name, skeleton, self.outer(node).start_point.row)

    # -- the LanguageSupport entry points -----------------------------------------------------

    def definition(self, parsed: ParsedFile, name: str, workspace: Workspace, hops: int = 0) -> Definition | None:
        """``name`` declared in the file, else where the file re-exports it from."""
        if parsed.tree is None:
            return None
        root = parsed.tree.root_node
        node = self.find(root, name, parsed.source)
        if node is not None:
            return self.definition_of(parsed, node, name, self.companions(root, node, name, parsed.source))
        if hops >= REEXPORT_HOPS:
            return None
        for imp, original in self.reexports(parsed.tree, name, parsed.source):
            for path in self.resolve(imp, parsed.path, workspace):
                target = workspace.parsed(path)
                if target is None or target.path == parsed.path:
                    continue
                found = self.definition(target, original, workspace, hops + 1)
                if found is not None:
                    return found
        return None

    def companions(self, root: Node, node: Node, name: str, source: bytes) -> str:
        """What a definition's skeleton shows after the declaration (Rust: a type's impls)."""
        return ""

    def reexports(self, tree: Tree, name: str, source: bytes) -> list[tuple[Import, str]]:
        """Where ``name`` comes from when this file re-exports it: (import, the name there)."""
        return []

    def member(self, parsed: ParsedFile, owner: str, name: str) -> Definition | None:
        if parsed.tree is None:
            return None
        container = self.find_container(parsed.tree.root_node, owner, parsed.source)
        if container is None:
            return None
        for member in self.members(container, parsed.source):
            if name in self.names(member, parsed.source):
                return self.definition_of(parsed, member, f"{owner}.{name}")
        return None

    def outline(self, parsed: ParsedFile) -> str:
        if parsed.tree is None:
            return ""
        rendered = [self.outline_item(node, parsed.source) for node in self.items(parsed.tree.root_node) if self.in_outline(node)]
        return "\n".join(r for r in rendered if r)

    def in_outline(self, node: Node) -> bool:
        return bool(node.is_named and node.type != "ERROR")

    def outline_item(self, node: Node, source: bytes) -> str:
        return self.render(node, source)

    def imports(self, tree: Tree, source: bytes) -> list[Import]:
        return []

    def resolve(self, imp: Import, from_path: Path, workspace: Workspace) -> list[Path]:
        return []


# -- C and C++ ----------------------------------------------------------------------------------
