"""``code-llama-ls explain | docstring | tests``: the actions from a shell.

explain prints Markdown; docstring and tests print the edit as a unified diff (``--apply``
writes it). Lines and characters are 0-based (characters in UTF-16 code units, as in LSP).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import textwrap
from pathlib import Path

from code_llama_ls.cli.common import (context_for, line_start, loading_events, range_offsets, read_document,
                                      repository_root, say)
from code_llama_ls.exits import EXIT_OK, EXIT_STATUS_HELP, EXIT_USAGE, CliError
from code_llama_ls.options import REMOTE, add_settings_options, settings_from


MODEL_HELP = ("the completion model: hub id or folder (default: %(default)s); it answers here too unless "
              "--instruct-model is set")
INSTRUCT_MODEL_HELP = "the model that answers (default: --model; instructModel in an editor)"
ANSWERING_MODEL = ("The model that answers is --instruct-model, else --model, whose default is a base model "
                   "(not trained to follow instructions): an Instruct model such as "
                   "codellama/CodeLlama-7b-Instruct-hf answers better.")


def add_arguments(commands) -> None:
    def command(name: str, help: str) -> argparse.ArgumentParser:
        description = textwrap.fill(f"{help[:1].upper()}{help[1:]}. {ANSWERING_MODEL}", 78)
        parser = commands.add_parser(name, help=help, description=description, epilog=EXIT_STATUS_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("file", type=Path)
        add_settings_options(parser, ("model", "instruct_model", "device", "instruct_max_new_tokens",
                                      "max_context_tokens", "local_files_only", "tokenizer", "instruct_endpoint",
                                      *REMOTE),
                             flags={"instruct_max_new_tokens": "--max-new-tokens"},
                             helps={"model": MODEL_HELP, "instruct_model": INSTRUCT_MODEL_HELP})
        return parser

    explain = command("explain", "explain a range of a file (Markdown), or answer a question")
    explain.add_argument("--range", required=True, help="L1:C1-L2:C2, 0-based")
    explain.add_argument("--question", help="ask this instead of a plain explanation")
    docstring = command("docstring", "document the definition at a line (unified diff)")
    docstring.add_argument("--line", type=int, required=True, help="0-based line in the definition")
    docstring.add_argument("--replace", action="store_true", help="replace an existing docstring")
    docstring.add_argument("--apply", action="store_true", help="write the change")
    tests = command("tests", "generate tests for a symbol (unified diff)")
    tests.add_argument("--symbol", help="function, method or class name (default: the module)")
    tests.add_argument("--apply", action="store_true", help="write the change")


def main(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    from code_llama_ls.actions.service import ActionService, instruct_settings
    from code_llama_ls.runtime.manager import RuntimeManager

    document = read_document(args.file)
    settings = settings_from(args, compile="off")
    root = repository_root(args.file)
    start, end, place = _where(args, document)
    kind, question = ("ask", args.question) if args.command == "explain" and args.question else (args.command, None)
    runtime = RuntimeManager(lambda: instruct_settings(settings), loading_events(progress=False))
    service = ActionService(runtime.get, lambda: settings, context_for(args.file, settings), lambda: [root])
    try:
        result = await service.run(kind, document, start, end, question=question,
                                   replace=getattr(args, "replace", False), place=place)
    finally:
        await runtime.close()
    if result.edit is None:
        print(result.markdown)
        return EXIT_OK
    sys.stdout.write(result.edit.diff(root))
    if getattr(args, "apply", False):
        result.edit.write()
        say(result.edit.message)
    return EXIT_OK


def _where(args: argparse.Namespace, document) -> tuple[int, int, str]:
    """The offsets the command works on, and how messages name them."""
    if args.command == "explain":
        start, end = range_offsets(document, args.file, args.range)
        return start, end, f"--range {args.range} of {args.file}"
    if args.command == "docstring":
        start = line_start(document, args.file, args.line)
        line = document.line_text(args.line)
        start += len(line) - len(line.lstrip())
        return start, start, f"line {args.line} of {args.file}"
    if args.symbol:
        from code_llama_ls.actions.targets import DEFINITIONS

        found = _find_symbol(document, args.symbol, DEFINITIONS.get(document.language, {}))
        if found is None:
            raise CliError(f"no function, method or class named {args.symbol!r} in {args.file}", EXIT_USAGE)
        return found, found, f"{args.symbol!r} in {args.file}"
    return len(document.text), len(document.text), str(args.file)


def _find_symbol(document, name: str, kinds: dict) -> int | None:
    from code_llama_ls.actions.targets import definition_name
    from code_llama_ls.documents import to_char

    tree = document.tree
    if tree is None:
        return None
    stack = [tree.root_node]
    source = document.text.encode("utf-8", "surrogatepass")
    while stack:
        node = stack.pop(0)
        if node.type in kinds and definition_name(node, document.language) == name:
            return to_char(source, node.start_byte, document.text)
        stack.extend(node.named_children)
    return None
