"""``code-llama-ls complete`` and ``prompt``: the completion pipeline at a position, from a shell."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from contextlib import contextmanager
from pathlib import Path

from code_llama_ls.cli.common import context_for, loading_events, position_offset, read_document, say
from code_llama_ls.exits import EXIT_INPUT, EXIT_NOTHING, EXIT_OK, EXIT_STATUS_HELP, CliError
from code_llama_ls.options import MODEL, REMOTE, add_settings_options, settings_from
from code_llama_ls.settings import Settings


def add_arguments(commands) -> None:
    complete = commands.add_parser(
        "complete", help="print the completion at a position", epilog=EXIT_STATUS_HELP,
        description="Print the model's completion at a position (0-based line and character, the character in\n"
                    "UTF-16 code units as in LSP): exactly what an editor would show there.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_position_options(complete)
    add_settings_options(complete, MODEL + REMOTE)
    complete.add_argument("--verbose", action="store_true",
                          help="say on stderr why there is no suggestion, how the model stopped, and its tokens")

    prompt = commands.add_parser(
        "prompt", help="show the exact prompt for a position", epilog=EXIT_STATUS_HELP,
        description="Show the exact prompt the model would get at a position (0-based, as for complete).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_position_options(prompt)
    add_settings_options(prompt, MODEL + REMOTE)
    prompt.add_argument("--json", action="store_true", help="one JSON object: ids, mode, prefix, suffix, snippets")


def _add_position_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path)
    parser.add_argument("--line", type=int, required=True, help="0-based line")
    parser.add_argument("--character", type=int, required=True, help="0-based, in UTF-16 code units")


def settings_of(args: argparse.Namespace) -> Settings:
    # a one-shot command ends before a background compile would pay off (or finish)
    return settings_from(args, compile="off")


def complete(args: argparse.Namespace) -> int:
    return asyncio.run(_complete(args))


def _open_at(args: argparse.Namespace):
    document = read_document(args.file)
    return document, position_offset(document, args.file, args.line, args.character)


@contextmanager
def _naming(file: Path):
    """A skipped completion (ignored or secret file, too large …) says why; this adds which file."""
    from code_llama_ls.completion.engine import CompletionSkipped

    try:
        yield
    except CompletionSkipped as exc:
        raise CliError(f"{file}: {exc}", EXIT_INPUT) from None


async def _pipeline(args: argparse.Namespace):
    from code_llama_ls.completion.engine import CompletionEngine
    from code_llama_ls.runtime.manager import RuntimeManager

    settings = settings_of(args)
    runtime = RuntimeManager(lambda: settings, loading_events())
    return settings, runtime, CompletionEngine(runtime.get, lambda: settings, context=context_for(args.file, settings))


async def _complete(args: argparse.Namespace) -> int:
    from code_llama_ls.completion.engine import NoSuggestion
    from code_llama_ls.completion.postprocess import PLAIN_TEXT_NOTE
    from code_llama_ls.languages import PLAIN_TEXT

    document, offset = _open_at(args)
    settings, runtime, engine = await _pipeline(args)
    try:
        with _naming(args.file):
            result = await engine.suggest(document, offset)
    finally:
        await runtime.close()
    stopped = f"the model stopped: {result.stop_reason}, after {_count(result.tokens, 'token')}"
    if args.verbose and document.language == PLAIN_TEXT:
        say(PLAIN_TEXT_NOTE)
    if isinstance(result, NoSuggestion):
        if args.verbose:
            say(f"no suggestion: {result.reason} ({stopped})")
        return EXIT_NOTHING
    if args.verbose:
        say(stopped)
    sys.stdout.write(result.text + "\n")
    return EXIT_OK


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _device_type(settings: Settings) -> str:
    """The device the model would run on, without loading it (it decides the default budget)."""
    if settings.max_context_tokens is not None:
        return "cpu"
    if settings.remote:
        return "remote"
    try:
        from code_llama_ls.backends.transformers_backend import pick_device

        return pick_device(settings.device).split(":", 1)[0]
    except Exception:  # torch not installed or the device is unavailable
        return "cpu"


def prompt(args: argparse.Namespace) -> int:
    from code_llama_ls.completion.engine import CompletionEngine
    from code_llama_ls.prompts.at_cursor import build_prompt
    from code_llama_ls.runtime.hub import load_failure, load_settings
    from code_llama_ls.prompts.tokenization import ModelTokenizer, TokenizerError
    from code_llama_ls.runtime.manager import detect_capabilities

    document, offset = _open_at(args)
    settings = settings_of(args)
    context = context_for(args.file, settings)
    with _naming(args.file):  # the checks the editor's completions get
        CompletionEngine(lambda: None, lambda: settings, context=context).check_allowed(document)
    used = load_settings(settings)
    try:
        tokenizer = ModelTokenizer.from_pretrained(used.tokenizer_name, local_files_only=used.local_files_only)
    except TokenizerError as exc:
        raise TokenizerError(load_failure(settings, used, exc)) from None
    prompt = build_prompt(document, offset, tokenizer, settings, _device_type(settings), context,
                          capabilities=detect_capabilities(used, tokenizer))
    if args.json:
        print(json.dumps(prompt.to_json(), ensure_ascii=False))
    else:
        print(f"mode={prompt.mode} ids={len(prompt.ids)} prefix_tokens={prompt.prefix_tokens} "
              f"suffix_tokens={prompt.suffix_tokens}")
        print(prompt.ids)
    return EXIT_OK
