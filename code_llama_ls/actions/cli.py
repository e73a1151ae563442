"""``code-llama-ls explain | docstring | tests``: the actions from a shell.

explain prints Markdown; docstring and tests print the edit as a unified diff (``--apply``
writes it). Lines and characters are 0-based (characters in UTF-16 code units, as in LSP).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path

from code_llama_ls.settings import DEFAULT_MODEL, Settings

COMMANDS = ("explain", "docstring", "tests")


def add_arguments(commands) -> None:
    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--model", default=DEFAULT_MODEL, help="instruct model: hub id or folder (default: %(default)s)")
        parser.add_argument("--device", default="auto")
        parser.add_argument("--max-new-tokens", type=int, default=512)
        parser.add_argument("--max-context-tokens", type=int)
        parser.add_argument("--local-files-only", action="store_true", help="never download from the hub")
        parser.add_argument("--tokenizer", help="hub id or folder of the tokenizer (default: the model's)")
        parser.add_argument("--instruct-endpoint", choices=["completions", "chat"], default="completions",
                            help="remote: completions with the instruct template (default) or the chat endpoint")
        from code_llama_ls.cli import add_remote_options

        add_remote_options(parser)

    explain = commands.add_parser("explain", help="explain a range of a file (Markdown), or answer a question")
    common(explain)
    explain.add_argument("--range", required=True, help="L1:C1-L2:C2, 0-based")
    explain.add_argument("--question", help="ask this instead of a plain explanation")
    docstring = commands.add_parser("docstring", help="document the definition at a line (unified diff)")
    common(docstring)
    docstring.add_argument("--line", type=int, required=True, help="0-based line in the definition")
    docstring.add_argument("--replace", action="store_true", help="replace an existing docstring")
    docstring.add_argument("--apply", action="store_true", help="write the change")
    tests = commands.add_parser("tests", help="generate tests for a symbol (unified diff)")
    common(tests)
    tests.add_argument("--symbol", help="function, method or class name (default: the module)")
    tests.add_argument("--apply", action="store_true", help="write the change")


def _fail(message: str) -> int:
    print(f"code-llama-ls: {message}", file=sys.stderr)
    return 1


def main(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    from code_llama_ls.actions.service import ActionCancelled, ActionError, ActionService
    from code_llama_ls.actions.targets import DEFINITIONS
    from code_llama_ls.context.engine import ContextEngine
    from code_llama_ls.documents import Document, DocumentStore, Position, PositionError
    from code_llama_ls.runtime import RuntimeEvents, RuntimeManager

    try:
        text = args.file.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _fail(f"cannot read {args.file}: {exc}")
    path = args.file.resolve()
    document = Document(uri=path.as_uri(), text=text, version=0)
    from code_llama_ls.cli import remote_settings

    settings = Settings(model=args.model, device=args.device, instruct_max_new_tokens=args.max_new_tokens,
                        max_context_tokens=args.max_context_tokens, local_files_only=args.local_files_only,
                        tokenizer=args.tokenizer, instruct_endpoint=args.instruct_endpoint, **remote_settings(args))
    root = next((p for p in (path.parent, *path.parent.parents) if (p / ".git").exists()), path.parent)
    kind, question, replace, start, end = args.command, None, False, 0, 0
    try:
        if kind == "explain":
            match = re.fullmatch(r"(\d+):(\d+)-(\d+):(\d+)", args.range)
            if match is None:
                return _fail("--range must look like L1:C1-L2:C2")
            l1, c1, l2, c2 = map(int, match.groups())
            start = document.offset_at(Position(l1, c1))
            end = document.offset_at(Position(l2, c2))
            if args.question:
                kind, question = "ask", args.question
        elif kind == "docstring":
            start = end = document.line_range(args.line)[0] + len(document.line_text(args.line)) - \
                len(document.line_text(args.line).lstrip())
            replace = args.replace
        elif args.symbol:
            found = _find_symbol(document, args.symbol, DEFINITIONS.get(document.language, {}))
            if found is None:
                return _fail(f"no function, method or class named {args.symbol!r} in {args.file}")
            start = end = found
        else:
            start = end = len(text)
    except (PositionError, IndexError) as exc:
        return _fail(str(exc))

    say = lambda *parts: print(*parts, file=sys.stderr)  # noqa: E731 - progress goes to stderr
    runtime = RuntimeManager(lambda: settings, RuntimeEvents(lambda state, message: None, say,
                                                             lambda message, pct: None, lambda message: None, say))
    service = ActionService(runtime.get, lambda: settings, ContextEngine(lambda: settings, DocumentStore(), [root]),
                            lambda: [root])
    try:
        result = await service.run(kind, document, start, end, question=question, replace=replace)
    except (ActionError, ActionCancelled) as exc:
        return _fail(str(exc))
    finally:
        await runtime.close()
    if result.edit is None:
        print(result.markdown)
        return 0
    sys.stdout.write(result.edit.diff(root))
    if getattr(args, "apply", False):
        result.edit.write()
        say(result.edit.message)
    return 0


def _find_symbol(document, name: str, kinds: dict) -> int | None:
    from code_llama_ls.actions.targets import definition_name, to_char

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
