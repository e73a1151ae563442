"""Placing a docstring in each language's convention (pure: text in, one text change out).

- Python: the first statement of the body, triple-quoted, at the body's indentation;
- JavaScript/TypeScript, Java, C/C++: a ``/** … */`` block above the definition (above its
  ``export``, annotations, ``template <…>``);
- Rust: ``///`` lines above (above ``#[…]`` attributes);
- Go: ``//`` lines above, the first starting with the declared name.

An existing docstring is replaced only when asked. An edit that would add tree-sitter parse
errors is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from code_llama_ls.actions.edits import TextChange
from code_llama_ls.actions.targets import Target, error_count, node_for, parse
from code_llama_ls.documents import to_char

SUPPORTED = ("python", "javascript", "typescript", "typescriptreact", "java", "rust", "go", "c", "cpp")


REGENERATE = "use Regenerate docstring (--replace on the command line) to replace it"


class DocstringError(ValueError):
    """No docstring can be placed (exists and not replacing, would not parse …)."""


@dataclass(frozen=True)
class Existing:
    start: int
    end: int


def _line_start(text: str, offset: int) -> int:
    return text.rfind("\n", 0, offset) + 1


def _indent_of_line(text: str, offset: int) -> str:
    start = _line_start(text, offset)
    line = text[start:]
    return line[: len(line) - len(line.lstrip(" \t"))]


# -- Python ------------------------------------------------------------------------------------


def _python_body(text: str, target: Target):
    tree = parse("python", text)
    node = node_for(tree, text, target) if tree is not None else None
    body = node.child_by_field_name("body") if node is not None else None
    if body is None:
        raise DocstringError(f"{target.name} has no body to document")
    statements = [c for c in body.named_children if c.type != "comment"]
    return tree, body, statements


def existing_docstring(language: str, text: str, target: Target) -> Existing | None:
    if language == "python":
        tree, _, statements = _python_body(text, target)
        source = tree.root_node.text or b""
        if statements and statements[0].type == "expression_statement" and statements[0].named_child_count == 1 \
                and statements[0].named_children[0].type in ("string", "concatenated_string"):
            return Existing(to_char(source, statements[0].start_byte, text), to_char(source, statements[0].end_byte, text))
        return None
    anchor_line = _line_start(text, target.anchor)
    markers = {"rust": ("///",), "go": ("//",)}.get(language)
    top, position = None, anchor_line
    while position > 0:
        previous = _line_start(text, position - 1)
        stripped = text[previous:position].strip()
        if markers is not None:  # line comments: every directly preceding one
            if not stripped.startswith(markers):
                break
            top = previous
        elif position == anchor_line and not stripped.endswith("*/"):
            break
        elif stripped.startswith("/*"):  # the start of the block comment above
            return Existing(previous, anchor_line) if stripped.startswith("/**") else None
        position = previous
    return Existing(top, anchor_line) if top is not None else None


def _python_literal(doc: str, indent: str) -> str:
    doc = doc.replace('"""', '\\"\\"\\"')
    if doc.endswith('"'):
        doc += " "
    prefix = 'r"""' if "\\" in doc and '\\"\\"\\"' not in doc else '"""'
    lines = doc.split("\n")
    if len(lines) == 1:
        return f'{prefix}{lines[0]}"""'
    body = "\n".join(f"{indent}{line}" if line else "" for line in lines[1:])
    return f'{prefix}{lines[0]}\n{body}\n{indent}"""'


def _python_change(text: str, target: Target, doc: str, replace: bool) -> TextChange:
    tree, body, statements = _python_body(text, target)
    source = tree.root_node.text or b""
    existing = existing_docstring("python", text, target)
    if existing is not None and not replace:
        raise DocstringError(f"{target.name} already has a docstring: {REGENERATE}")
    def_line = _line_start(text, target.start)
    first = statements[0] if statements else body
    first_start = to_char(source, first.start_byte, text)
    if existing is not None:
        indent = _indent_of_line(text, existing.start)
        return TextChange(existing.start, existing.end, _python_literal(doc, indent))
    if _line_start(text, first_start) == def_line:  # def f(): return 1
        base = _indent_of_line(text, target.start)
        indent = base + ("\t" if base.startswith("\t") else "    ")
        gap = first_start
        while gap > 0 and text[gap - 1] in " \t":
            gap -= 1
        return TextChange(gap, first_start, f"\n{indent}{_python_literal(doc, indent)}\n{indent}")
    indent = _indent_of_line(text, first_start)
    line = _line_start(text, first_start)
    return TextChange(line, line, f"{indent}{_python_literal(doc, indent)}\n")


# -- comments above ----------------------------------------------------------------------------


def comment_block(language: str, doc: str, indent: str, name: str) -> str:
    lines = doc.split("\n")
    if language == "rust":
        return "".join(f"{indent}///{' ' + line if line else ''}\n" for line in lines)
    if language == "go":
        if not lines[0].startswith(name):
            first = lines[0]
            lines[0] = f"{name} {first[:1].lower()}{first[1:]}" if first[:1].isupper() and not first[1:2].isupper() \
                else f"{name}: {first}"
        return "".join(f"{indent}//{' ' + line if line else ''}\n" for line in lines)
    lines = [line.replace("*/", "*\\/") for line in lines]
    inner = "".join(f"{indent} *{' ' + line if line else ''}\n" for line in lines)
    return f"{indent}/**\n{inner}{indent} */\n"


def docstring_change(language: str, text: str, target: Target, doc: str, *, replace: bool = False) -> TextChange:
    """The one change that documents ``target`` with ``doc`` (plain text, no markers)."""
    if language not in SUPPORTED:
        raise DocstringError(f"docstrings are not supported for {language}")
    if target.kind == "module":
        raise DocstringError("a module is documented by hand: choose a function, method or class")
    if language == "python":
        change = _python_change(text, target, doc, replace)
    else:
        existing = existing_docstring(language, text, target)
        if existing is not None and not replace:
            raise DocstringError(f"{target.name} already has a doc comment: {REGENERATE}")
        anchor_line = _line_start(text, target.anchor)
        indent = _indent_of_line(text, target.anchor)
        block = comment_block(language, doc, indent, target.name)
        start = existing.start if existing is not None else anchor_line
        change = TextChange(start, anchor_line, block)
    check_parses(language, text, change)
    return change


def check_parses(language: str, text: str, change: TextChange) -> None:
    new_text = change.apply(text)
    if error_count(parse(language, new_text)) > error_count(parse(language, text)):
        raise DocstringError("the edited file would not parse; nothing was changed")
