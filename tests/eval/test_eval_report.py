"""``eval``'s table and HTML page from a hand-made report: no model."""

from __future__ import annotations

import base64
import re
import sys

import pytest

from code_llama_ls.exits import CliError
from code_llama_ls.eval.metrics import Outcome, score, summarise
from code_llama_ls.eval.report import html_page, table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sample() -> tuple[dict, list]:
    scores = [score(kind, variant, "\n", 0, "x", "python", True, Outcome(text, 0, "eot", 1, latency))
              for kind in ("line", "block") for variant, text, latency in (("context/psm", "x", 12.0),
                                                                          ("no-context/psm", "y", 8.0))]
    report = {"repository": "/repo", "tasks": {"total": 2, "by_kind": {"line": 1, "block": 1, "call_args": 0}},
              "variants": ["context/psm", "no-context/psm"],
              "results": {"total": 4, "from_cache": 1, "generated": 3},
              "metrics": summarise(scores), "settings": {"model": "m <b>", "max_new_tokens": 64}}
    return report, scores


def test_table_has_a_row_per_kind_and_variant():
    report, _ = sample()
    lines = table(report).splitlines()
    assert lines[0].split()[:4] == ["kind", "variant", "tasks", "EM"]
    rows = [line.split()[:4] for line in lines[1:-1]]
    assert rows == [["line", "context/psm", "1", "1.00"], ["line", "no-context/psm", "1", "0.00"],
                    ["block", "context/psm", "1", "1.00"], ["block", "no-context/psm", "1", "0.00"],
                    ["all", "context/psm", "2", "1.00"], ["all", "no-context/psm", "2", "0.00"]]
    assert lines[-1] == "2 tasks × 2 variants; 1 results from the cache, 3 generated"


def test_html_page_embeds_png_plots_and_escapes_text():
    report, scores = sample()
    page = html_page(report, scores)
    images = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([^"]+)">', page)
    assert len(images) == 3 and all(base64.b64decode(png).startswith(PNG_MAGIC) for png in images)
    assert "<svg" not in page and "m &lt;b&gt;" in page and "<td>context/psm</td>" in page


def test_html_without_matplotlib_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    report, scores = sample()
    with pytest.raises(CliError, match=r"pip install 'code-llama-ls\[eval\]'"):
        html_page(report, scores)
