"""The context engine end to end on small workspaces: what reaches the prompt, and what never does."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.tiny_model import build_fallback_tokenizer, fixture_tokenizer_dir
from code_llama_ls.prompts.at_cursor import build_prompt
from code_llama_ls.context.engine import ContextEngine
from code_llama_ls.documents import DocumentStore
from code_llama_ls.prompts.tokenization import ModelTokenizer
from code_llama_ls.settings import Settings


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> ModelTokenizer:
    folder = fixture_tokenizer_dir() or build_fallback_tokenizer(tmp_path_factory.mktemp("tok"))
    return ModelTokenizer.from_pretrained(str(folder), local_files_only=True)


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def prompt_at(root: Path, tokenizer, relative: str, marker: str, settings: Settings | None = None,
              documents: DocumentStore | None = None, engine: ContextEngine | None = None):
    settings = settings or Settings(max_context_tokens=2048, max_new_tokens=64)
    documents = documents if documents is not None else DocumentStore()
    path = root / relative
    text = path.read_text(encoding="utf-8")
    uri = path.as_uri()
    document = documents.open(uri, text.replace(marker, ""), 1) if uri not in documents else documents.get(uri)
    engine = engine or ContextEngine(lambda: settings, documents, [root])
    offset = text.index(marker)
    return build_prompt(document, offset, tokenizer, settings, "cpu", engine), engine


PY_WORKSPACE = {
    "pkg/__init__.py": "",
    "pkg/shapes.py": 'class Circle:\n    """A circle."""\n\n    def area(self) -> float:\n        return 3.14 * self.r ** 2\n',
    "pkg/hidden.py": "def hidden_helper(x):\n    return 'GITIGNORED-BODY'\n",
    "pkg/private.py": "def private_helper(x):\n    return 'CODELLAMAIGNORED-BODY'\n",
    "pkg/user_secret.py": "def user_helper(x):\n    return 'USER-PATTERN-BODY'\n",
    ".gitignore": "pkg/hidden.py\n",
    ".codellamaignore": "private.py\n",
    "pkg/app.py": ("from pkg.shapes import Circle\nfrom pkg.hidden import hidden_helper\n"
                   "from pkg.private import private_helper\nfrom pkg.user_secret import user_helper\n\n\n"
                   "def main():\n    c = Circle()\n    hidden_helper(1)\n    private_helper(2)\n"
                   "    user_helper(3)\n    return <CURSOR>\n"),
}


def test_resolved_definitions_reach_the_prompt_and_ignored_files_never_do(tmp_path, tokenizer):
    write(tmp_path, PY_WORKSPACE)
    settings = Settings(max_context_tokens=2048, max_new_tokens=64, ignore_patterns=["*_secret.py"])
    prompt, _ = prompt_at(tmp_path, tokenizer, "pkg/app.py", "<CURSOR>", settings)
    assert "class Circle:" in prompt.prefix and "# Path: pkg/shapes.py" in prompt.prefix
    for body, name in (("GITIGNORED", "hidden_helper"), ("CODELLAMAIGNORED", "private_helper"),
                       ("USER-PATTERN", "user_helper")):
        assert body not in prompt.prefix
        assert f"def {name}" not in prompt.prefix  # not even its skeleton
    assert [s.path for s in prompt.snippets if s.kind == "definition"] == ["pkg/shapes.py"]
    assert all(s.tokens > 0 for s in prompt.snippets)


def test_deny_listed_files_never_reach_a_prompt_even_when_included(tmp_path, tokenizer):
    write(tmp_path, {
        "src/id_rsa.h": "int leak_key(void); /* DENY-LISTED */\n",
        "src/server.key": "int leak_cert(void); /* DENY-LISTED */\n",
        "src/util.h": "/** Adds. */\nint add(int a, int b);\n",
        "src/main.c": ('#include "id_rsa.h"\n#include "server.key"\n#include "util.h"\n\n'
                       "int main(void) {\n    leak_key();\n    leak_cert();\n    return add(<CURSOR>\n}\n"),
    })
    prompt, engine = prompt_at(tmp_path, tokenizer, "src/main.c", "<CURSOR>")
    assert "int add(int a, int b);" in prompt.prefix
    assert "DENY-LISTED" not in prompt.prefix and "leak_key(void)" not in prompt.prefix
    assert engine.is_ignored((tmp_path / "src/server.key").as_uri())
    assert engine.is_ignored((tmp_path / ".env").as_uri())


def test_an_ignored_open_document_is_never_a_snippet(tmp_path, tokenizer):
    write(tmp_path, {"a.py": "def shared_name():\n    pass\n<CURSOR>\n", "b.py": "x = 1\n"})
    documents = DocumentStore()
    secret = tmp_path / ".env"
    documents.open(secret.as_uri(), "def shared_name():\n    SECRET_TOKEN = 'xyz'\n", 1)
    other = tmp_path / "b.py"
    documents.open(other.as_uri(), "def shared_name():\n    return 'OPEN-SNIPPET'\n", 1)
    settings = Settings(max_context_tokens=2048, max_new_tokens=64)
    engine = ContextEngine(lambda: settings, documents, [tmp_path])
    engine.note_edit(secret.as_uri(), 1)
    engine.note_edit(other.as_uri(), 1)
    prompt, _ = prompt_at(tmp_path, tokenizer, "a.py", "<CURSOR>", settings, documents, engine)
    assert "OPEN-SNIPPET" in prompt.prefix
    assert "SECRET_TOKEN" not in prompt.prefix


def test_packing_is_stable_while_typing_within_a_line(tmp_path, tokenizer):
    body = "".join(f"def helper_{i}(value):\n    return value + {i}\n\n" for i in range(150))
    write(tmp_path, {"lib.py": 'def scale(x, factor):\n    """Scale x."""\n    return x * factor\n',
                     "main.py": "from lib import scale\n\n" + body + "result = scale(\n"})
    documents = DocumentStore()
    path = tmp_path / "main.py"
    text = path.read_text()
    document = documents.open(path.as_uri(), text, 1)
    psm = Settings(max_context_tokens=1024, max_new_tokens=64)
    spm = Settings(max_context_tokens=1024, max_new_tokens=64, fim_mode="spm")
    engine = ContextEngine(lambda: psm, documents, [tmp_path])
    offset = text.index("scale(\n") + len("scale(")

    states = []
    for i, char in enumerate("value"):  # type "value" one keystroke at a time
        position = document.position_at(offset + i)
        document.apply_change(char, position, position)
        document.version += 1
        cursor = offset + i + 1
        states.append((build_prompt(document, cursor, tokenizer, psm, "cpu", engine),
                       build_prompt(document, cursor, tokenizer, spm, "cpu", engine), document.text[:cursor]))

    first = states[0][0]
    assert "def scale(x, factor):" in first.prefix
    context = "".join(s.text for s in first.snippets)
    local_start = len(states[0][2]) - (len(first.prefix) - len(context))
    assert local_start > 0  # the file is cut: the test exercises a moving cut point
    for prompt, _, before in states:
        assert [s.text for s in prompt.snippets] == [s.text for s in first.snippets]
        # The local prefix starts at the same place of the document on every keystroke.
        assert len(before) - (len(prompt.prefix) - len(context)) == local_start
    # SPM puts the prefix last: a keystroke only changes the end of the ids, so a cached
    # prompt prefix stays valid.
    for (_, a, before), (_, b, _) in zip(states, states[1:]):
        common = next((i for i, (x, y) in enumerate(zip(a.ids, b.ids)) if x != y), min(len(a.ids), len(b.ids)))
        cursor_line = before[before.rindex("\n") + 1:]
        assert common >= len(a.ids) - len(tokenizer.encode_infilling(cursor_line)), (len(a.ids), common)
        assert common > len(a.ids) - 10
