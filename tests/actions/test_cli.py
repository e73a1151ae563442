"""code-llama-ls explain | docstring | tests with the trained tiny model (known answers)."""

from __future__ import annotations

import subprocess
import sys

from benchmarks.tiny_model import INSTRUCT_EXAMPLES, INSTRUCT_SOURCE
from code_llama_ls.exits import EXIT_USAGE


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "code_llama_ls", *args], capture_output=True, text=True, timeout=120)


def test_cli_explain_docstring_and_tests(trained_model, tmp_path):
    source = tmp_path / "add.py"
    source.write_text(INSTRUCT_SOURCE)
    model = ["--model", str(trained_model), "--local-files-only"]
    explain = run("explain", str(source), "--range", "0:0-2:0", *model)
    assert explain.returncode == 0, explain.stderr
    assert explain.stdout == next(ex.answer for ex in INSTRUCT_EXAMPLES if ex.kind == "explain") + "\n"
    doc = run("docstring", str(source), "--line", "0", *model)
    assert doc.returncode == 0, doc.stderr
    assert '+    """Add two numbers and return their sum."""\n' in doc.stdout
    assert source.read_text() == INSTRUCT_SOURCE  # no --apply: nothing written
    tests = run("tests", str(source), "--symbol", "add", "--apply", *model)
    assert tests.returncode == 0, tests.stderr
    assert "+++ b/tests/test_add.py" in tests.stdout
    assert (tmp_path / "tests" / "test_add.py").read_text() == \
        "from add import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    missing = run("tests", str(source), "--symbol", "nope", *model)
    assert missing.returncode == EXIT_USAGE and "no function, method or class named 'nope'" in missing.stderr
