"""Command line: the language server (default), and the pipeline from a shell.

Lines and characters are 0-based, characters in UTF-16 code units as in LSP. Every failure the
user can act on ends here as one line on stderr and a documented exit status (``cli_common``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from code_llama_ls.cli import complete
from code_llama_ls.cli.bench import add_arguments as add_bench_arguments, main as run_bench
from code_llama_ls.cli.common import exit_status
from code_llama_ls.exits import EXIT_OK, EXIT_STATUS_HELP
from code_llama_ls.cli.complete import add_arguments as add_complete_arguments
from code_llama_ls.lifetime import INTERRUPTED, exit_now

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="code-llama-ls", description="Code Llama language server",
                                     epilog=EXIT_STATUS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stdio", action="store_true", help="speak LSP over stdio (the default)")
    parser.add_argument("--tcp", action="store_true", help="listen on 127.0.0.1 instead of stdio")
    parser.add_argument("--port", type=int, default=2087, help="port for --tcp (default: %(default)s)")
    commands = parser.add_subparsers(dest="command")

    add_complete_arguments(commands)
    add_bench_arguments(commands)
    from code_llama_ls.cli.actions import add_arguments as add_action_arguments  # argparse only: cheap

    add_action_arguments(commands)
    from code_llama_ls.cli.eval import add_arguments as add_eval_arguments  # argparse only: cheap

    add_eval_arguments(commands.add_parser("eval", help="score the model on completion tasks cut from a repository",
                                           epilog=EXIT_STATUS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter))
    from code_llama_ls.model_server.command import add_arguments as add_model_server_arguments

    add_model_server_arguments(commands)
    _add_log_level(parser)
    return parser


def _add_log_level(parser: argparse.ArgumentParser, default: str = "WARNING") -> None:
    """``--log-level`` before or after any subcommand: below the top, no default of its own that
    would hide the one given before the subcommand."""
    parser.add_argument("--log-level", default=default, help="stderr log level (default: WARNING)")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subcommand in action.choices.values():
                _add_log_level(subcommand, argparse.SUPPRESS)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        status = _run(args)
    except KeyboardInterrupt:
        exit_now(INTERRUPTED)  # a model may still be loading in a worker thread: do not wait for it
    except Exception as exc:
        status = exit_status(exc)
        if status is None:  # a bug: keep its traceback
            raise
        print(f"code-llama-ls: {exc}", file=sys.stderr)
    raise SystemExit(status)


def _run(args: argparse.Namespace) -> int:
    """The chosen command's exit status; the language server ends the process itself."""
    if args.command == "complete":
        return complete.complete(args)
    if args.command == "prompt":
        return complete.prompt(args)
    if args.command in ("explain", "docstring", "tests"):
        from code_llama_ls.cli import actions

        return actions.main(args)
    if args.command == "eval":
        from code_llama_ls.cli import eval as eval_command

        return eval_command.main(args)
    if args.command == "model-server":
        from code_llama_ls.model_server import command

        return command.main(args)
    if args.command == "bench":
        return run_bench(args)
    from code_llama_ls.lsp.server import serve_stdio, serve_tcp

    if args.tcp:
        serve_tcp(args.port)
    else:
        serve_stdio()
    return EXIT_OK
