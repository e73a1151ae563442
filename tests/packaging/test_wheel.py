"""The wheel users install holds the package and nothing that only tests and benchmarks need."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXPECTED = Path(__file__).with_name("wheel-modules.txt")
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "code_llama_ls", "benchmarks")
"""What a build reads, and benchmarks/ beside it to show it stays out."""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in SOURCES:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                              if (REPO / name).is_dir() else {}))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "--wheel-dir", str(out), str(source)], check=True)
    [built] = out.glob("code_llama_ls-*.whl")
    return built


def test_the_wheel_holds_exactly_the_committed_module_list(wheel):
    with zipfile.ZipFile(wheel) as archive:
        modules = sorted(name for name in archive.namelist() if name.endswith(".py"))
    expected = EXPECTED.read_text().split()
    assert modules == expected, (f"added: {sorted(set(modules) - set(expected))}, "
                                 f"gone: {sorted(set(expected) - set(modules))}; update {EXPECTED.name} "
                                 "if the change is meant")
    assert not [name for name in modules if not name.startswith("code_llama_ls/")]


def test_bench_from_a_wheel_says_the_benchmarks_run_from_a_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site), str(wheel)],
                   check=True)
    env = {**os.environ, "PYTHONPATH": str(site)}  # ahead of this checkout's editable install
    done = subprocess.run([sys.executable, "-c", "import code_llama_ls, sys; print(code_llama_ls.__file__); "
                           "from code_llama_ls.cli.main import main; main(sys.argv[1:])", "bench", "replay"],
                          env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.stdout.startswith(str(site)), done.stdout
    assert done.returncode == 2, done.stderr
    assert "the benchmarks run from a checkout" in done.stderr
