"""Taking code and docstring text out of a model's answer: fenced blocks, stray prose, markers."""

from __future__ import annotations

import inspect
import re
import textwrap

_FENCE = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)", re.M | re.S)
FENCE_ALIASES = {
    "python": {"python", "py", "python3", "pytest"},
    "javascript": {"javascript", "js", "jsx", "node", "mjs"},
    "typescript": {"typescript", "ts", "tsx"},
    "typescriptreact": {"typescript", "ts", "tsx"},
    "java": {"java"},
    "rust": {"rust", "rs"},
    "go": {"go", "golang"},
    "c": {"c", "h"},
    "cpp": {"cpp", "c++", "cc", "cxx", "hpp", "c"},
}
_CODE_START = {
    "python": re.compile(r"^(import |from \S+ import |def |class |@|async def |if __name__)"),
    "javascript": re.compile(r"^(import |const |let |var |function |describe\(|test\(|it\(|export |class |require\()"),
    "typescript": re.compile(r"^(import |const |let |var |function |describe\(|test\(|it\(|export |class |require\()"),
    "java": re.compile(r"^(package |import |public |class |@|final |abstract )"),
    "rust": re.compile(r"^(use |fn |#\[|mod |pub |impl |struct |extern )"),
    "go": re.compile(r"^(package |import |func |type |var |const )"),
    "c": re.compile(r"^(#include|#define|static |void |int |char |bool |double |float |unsigned |long |struct |typedef |const |size_t )"),
}
_CODE_START["typescriptreact"] = _CODE_START["typescript"]
_CODE_START["cpp"] = re.compile(_CODE_START["c"].pattern[:-1] + r"|namespace |template|using |class |auto |std::)")
_PROSE = re.compile(r"^[A-Z][A-Za-z' ,]+[^;{}()=\[\]]*[.:!]$")


class NoCodeError(ValueError):
    """The answer holds no code we could use."""


def fenced_blocks(answer: str) -> list[tuple[str, str]]:
    """(language tag, body) of every fenced block; an unterminated last block runs to the end."""
    return [(m.group(2).lower(), m.group(3)) for m in _FENCE.finditer(answer)]


def extract_code(answer: str, language: str) -> str:
    """The code of an answer: its fenced blocks in the language (or untagged), else the lines from
    the first one that looks like code, without trailing prose."""
    blocks = fenced_blocks(answer)
    if blocks:
        aliases = FENCE_ALIASES.get(language, {language})
        chosen = [body for tag, body in blocks if tag in aliases] or [body for tag, body in blocks if not tag]
        chosen = [body for body in chosen if body.strip()]
        if chosen:
            return "\n\n".join(textwrap.dedent(body).strip("\n") for body in chosen).rstrip() + "\n"
        raise NoCodeError("the answer's code blocks are empty or in another language")
    start_re = _CODE_START.get(language)
    lines = answer.strip("\n").split("\n")
    start = None
    if start_re is not None:
        start = next((i for i, line in enumerate(lines) if start_re.match(line)), None)
    if start is None:
        raise NoCodeError("the answer holds no code")
    body = lines[start:]
    while body and (not body[-1].strip() or (_PROSE.match(body[-1].strip()) and not body[-1].startswith((" ", "\t")))):
        body.pop()
    if not body:
        raise NoCodeError("the answer holds no code")
    return "\n".join(body).rstrip() + "\n"


_INTRO = re.compile(r"^(here|sure|the docstring|docstring|certainly)\b.*:\s*$", re.I)


def clean_docstring(answer: str) -> str:
    """The docstring text of an answer, without quotes, comment markers, fences or intro prose."""
    text = answer.strip()
    blocks = fenced_blocks(text)
    if blocks:
        text = max((body for _, body in blocks), key=len).strip()
    for quote in ('"""', "'''"):
        first = text.find(quote)
        if first != -1:
            second = text.find(quote, first + 3)
            text = text[first + 3: second if second != -1 else len(text)]
            break
    lines = text.strip("\n").split("\n")
    if len(lines) > 1 and _INTRO.match(lines[0].strip()):
        lines = lines[1:]
    cleaned = []
    for line in lines:
        stripped = line.lstrip()
        for marker in ("/**", "*/", "///", "//!", "//", "/*", "*", "# "):
            if stripped.startswith(marker) and not stripped.startswith("#["):
                stripped = stripped[len(marker):]
                stripped = stripped[1:] if stripped.startswith(" ") else stripped
                line = stripped
                break
        if line.rstrip().endswith("*/"):
            line = line.rstrip()[:-2]
        cleaned.append(line.rstrip())
    cleaned = inspect.cleandoc("\n".join(cleaned)).split("\n")
    while cleaned and not cleaned[0]:
        cleaned.pop(0)
    while cleaned and not cleaned[-1]:
        cleaned.pop()
    result = "\n".join(cleaned)
    result = re.sub(r"\n{3,}", "\n\n", result)
    if not result.strip():
        raise NoCodeError("the answer holds no docstring text")
    return result
