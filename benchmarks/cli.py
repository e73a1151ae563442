"""The ``code-llama-ls bench`` subcommands, registered by the command line when it runs from a checkout."""

from __future__ import annotations

import argparse
import importlib

from benchmarks import context, engines, load, replay, shape, soak

COMMANDS = {
    "overhead": "server-side time per request, by stage",
    "context": "cross-file context recall on the stdlib, model-free",
    "replay": "typing replay through the server: ours vs naive",
    "engines": "the in-process engines and llama-server on SmolLM2",
    "load": "N language servers as a team against one inference server",
    "shape": "post-processing on editor states cut from real code, model-free",
    "soak": "one server under a scripted editor for N minutes, caches bounded small",
}


def add_arguments(bench: argparse.ArgumentParser) -> None:
    commands = bench.add_subparsers(dest="bench", required=True)
    overhead = commands.add_parser("overhead", help=COMMANDS["overhead"])
    overhead.add_argument("--requests", type=int, default=200)
    overhead.add_argument("--lines", type=int, default=10_000)
    overhead.add_argument("--max-new-tokens", type=int, default=16)
    overhead.add_argument("--json", action="store_true")
    for module in (context, replay, engines, load, shape, soak):  # their arguments only: cheap to import
        name = module.__name__.rsplit(".", 1)[1]
        module.add_arguments(commands.add_parser(name, help=COMMANDS[name]))


def main(args: argparse.Namespace) -> int:
    return importlib.import_module(f"benchmarks.{args.bench}").main(args)
