"""``code-llama-ls bench``: the benchmarks live in the repository's ``benchmarks/`` folder, which
is not installed. From a checkout (an editable install) they run as before; from a wheel the
command says where they are."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from code_llama_ls.exits import EXIT_USAGE, CliError

FROM_A_CHECKOUT = ("the benchmarks run from a checkout of the code-llama-ls repository (its benchmarks/ folder "
                   "is not installed): clone it, `python -m pip install -e .` there, then run code-llama-ls bench")


def checkout_root() -> Path | None:
    """The repository this package was imported from, when it has its ``benchmarks/`` folder."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "benchmarks" / "cli.py").is_file() else None


def _benchmarks():
    root = checkout_root()
    if root is None:
        return None
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module("benchmarks.cli")


def add_arguments(commands) -> None:
    bench = commands.add_parser("bench", help="benchmarks that print figures (from a checkout)")
    benchmarks = _benchmarks()
    if benchmarks is None:
        bench.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        bench.set_defaults(bench=None)
    else:
        benchmarks.add_arguments(bench)


def main(args: argparse.Namespace) -> int:
    benchmarks = _benchmarks()
    if benchmarks is None:
        raise CliError(FROM_A_CHECKOUT, EXIT_USAGE)
    return benchmarks.main(args)
