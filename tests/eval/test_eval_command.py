"""``code-llama-ls eval`` end to end: the real command on a small repository with the trained tiny
model, its cache, its failures, and its HTML report opened in headless Chromium.

The tiny model's suggestions are near random, so these tests check the report's structure, not
its quality. The report's screenshot is kept under ``tests/artifacts/eval-report.png``
(gitignored), for a person to look at.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from code_llama_ls.exits import EXIT_INPUT, EXIT_MODEL
from code_llama_ls.eval.tasks import KINDS

WAIT = 300
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
VARIANTS = {"context/psm", "context/spm", "no-context/psm", "no-context/spm"}  # the tiny model infills
METRICS = ("exact_match", "edit_similarity", "identifier_f1", "shown")
FILES = {
    "pkg/__init__.py": "",
    "pkg/util.py": 'def add(a, b):\n    return a + b\n\n\ndef scale(value, factor=2):\n'
                   '    result = value * factor\n    if result > 100:\n        result = 100\n    return result\n',
    "pkg/app.py": "from pkg.util import add, scale\n\n\ndef total(items):\n    acc = 0\n    for item in items:\n"
                  "        acc = add(acc, item)\n    return scale(acc, 3)\n",
}
PROBE = """<script>window.addEventListener("load", () => {
  document.title = JSON.stringify([...document.images].map(i => [i.complete, i.naturalWidth]));
});</script>"""


def eval_command(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CODE_LLAMA_LS_EVAL_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "code_llama_ls", "eval", *args], capture_output=True, text=True,
                          timeout=WAIT, env=env)


@pytest.fixture(scope="module")
def runs(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two runs of ``eval --limit 5 --html … --json`` with one cache: the first generates."""
    root = tmp_path_factory.mktemp("eval")
    repository = root / "repo"
    for name, text in FILES.items():
        (repository / name).parent.mkdir(parents=True, exist_ok=True)
        (repository / name).write_text(text)
    options = ["--limit", "5", "--json", "--model", str(trained_model), "--local-files-only", "--device", "cpu"]
    first = eval_command(str(repository), "--html", str(root / "report.html"), *options, cache=root / "cache")
    second = eval_command(str(repository), *options, cache=root / "cache")
    return {"first": first, "second": second, "report": root / "report.html", "root": root}


def test_the_json_has_every_kind_and_variant_and_counts_add_up(runs: dict):
    done = runs["first"]
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["tasks"]["total"] == 5 and sum(report["tasks"]["by_kind"].values()) == 5
    assert set(report["tasks"]["by_kind"]) == set(KINDS) and min(report["tasks"]["by_kind"].values()) >= 1
    assert set(report["variants"]) == VARIANTS
    assert report["results"] == {"total": 20, "from_cache": 0, "generated": 20}
    assert set(report["metrics"]) == {*KINDS, "all"}
    for kind, by_variant in report["metrics"].items():
        assert set(by_variant) == VARIANTS
        for metrics in by_variant.values():
            expected = 5 if kind == "all" else report["tasks"]["by_kind"][kind]
            assert metrics["tasks"] == expected
            assert all(0.0 <= metrics[name] <= 1.0 for name in METRICS)
            assert metrics["parses"] is None or 0.0 <= metrics["parses"] <= 1.0
            assert 0 <= metrics["latency_p50_ms"] <= metrics["latency_p95_ms"]
            assert sum(metrics["stop_reasons"].values()) == pytest.approx(1.0)
    assert report["settings"]["max_context_tokens"] == 2048 and report["settings"]["max_new_tokens"] == 64
    assert report["settings"]["completion_cache_entries"] == 0 and report["settings"]["debounce_ms"] == 0


def test_a_second_run_comes_from_the_cache_without_loading_the_model(runs: dict):
    first, second = json.loads(runs["first"].stdout), runs["second"]
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert again["results"] == {"total": 20, "from_cache": 20, "generated": 0}
    assert again["metrics"] == first["metrics"]
    assert "loading" not in second.stderr


def test_the_table_without_json(runs: dict, trained_model: Path):
    repository, cache = runs["root"] / "repo", runs["root"] / "cache"
    done = eval_command(str(repository), "--limit", "5", "--model", str(trained_model), "--local-files-only",
                        "--device", "cpu", "--fim-mode", "psm", "--quiet", cache=cache)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("kind") and "edit sim" in lines[0]
    assert {line.split()[1] for line in lines[1:-1]} == {"context/psm", "no-context/psm"}  # --fim-mode psm
    assert lines[-1] == "5 tasks × 2 variants; 10 results from the cache, 0 generated"
    assert done.stderr == ""


@pytest.mark.parametrize("case", ["not_a_folder", "no_tasks", "model_missing", "html_folder_missing"])
def test_failures_are_one_line_with_an_exit_status(case: str, tmp_path: Path):
    (tmp_path / "file.py").write_text("x = 1\n")
    (tmp_path / "empty").mkdir()
    args, status, message = {
        "not_a_folder": ([str(tmp_path / "file.py")], EXIT_INPUT, "is a file"),
        "no_tasks": ([str(tmp_path / "empty")], EXIT_INPUT, "no completion tasks"),
        "model_missing": ([str(tmp_path), "--model", str(tmp_path / "no-model"), "--local-files-only",
                           "--device", "cpu"], EXIT_MODEL, "no-model"),
        "html_folder_missing": ([str(tmp_path), "--html", str(tmp_path / "nowhere" / "r.html")], EXIT_INPUT,
                                "no folder"),  # said before any model call
    }[case]
    done = eval_command(*args, "--quiet", cache=tmp_path / "cache")
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("code-llama-ls: ") and message in lines[0], done.stderr


def chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing; CI must have it (apt-get install chromium)")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")


def test_the_report_opens_in_chromium_with_every_plot_loaded(runs: dict, tmp_path: Path):
    browser = chromium()
    assert runs["first"].returncode == 0, runs["first"].stderr
    page = runs["report"].read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", PROBE + "\n</body>"), encoding="utf-8")
    headless = [str(browser), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
    dom = subprocess.run([*headless, "--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=120)
    title = re.search(r"<title>(.*?)</title>", dom.stdout, re.S)
    assert title is not None, dom.stderr[-2000:]
    images = json.loads(title.group(1))
    assert len(images) >= 2 and all(complete and width > 0 for complete, width in images), images
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "eval-report.png"
    screenshot.unlink(missing_ok=True)
    shot = subprocess.run([*headless, f"--screenshot={screenshot}", "--window-size=1200,1600", runs["report"].as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert screenshot.is_file() and screenshot.stat().st_size > 0, shot.stderr[-2000:]
    print(f"eval report screenshot: {screenshot}")
