"""Command line: the language server (default), and the pipeline from a shell.

Lines and characters are 0-based, characters in UTF-16 code units as in LSP. Every failure the
user can act on ends here as one line on stderr and a documented exit status (``cli_common``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from code_llama_ls.cli_common import (EXIT_INPUT, EXIT_NOTHING, EXIT_OK, EXIT_STATUS_HELP, CliError, exit_status,
                                      position_offset, read_document, repository_root)
from code_llama_ls.lifetime import INTERRUPTED, exit_now
from code_llama_ls.settings import DEFAULT_MODEL, Settings

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL, help="hub id or local folder (default: %(default)s)")
    parser.add_argument("--tokenizer", help="hub id or folder of the tokenizer (default: the model's)")
    parser.add_argument("--max-context-tokens", type=int, help="prompt + completion budget (default by device)")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--fim-mode", choices=["auto", "psm", "spm"], default="auto")
    parser.add_argument("--infilling", choices=["auto", "on", "off"], default="auto",
                        help="fill-in-the-middle or left-to-right prompts (default: auto, by model)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--local-files-only", action="store_true", help="never download from the hub")
    add_remote_options(parser)


def add_remote_options(parser: argparse.ArgumentParser) -> None:
    """--backend/--url/--api-key-env …: try a remote inference server from a shell."""
    from typing import get_args

    from code_llama_ls.settings import BackendName

    parser.add_argument("--backend", choices=get_args(BackendName), default="transformers",
                        help="where the model runs (default: %(default)s); remote: openai, ollama, llamacpp")
    parser.add_argument("--url", help="remote server: http(s)://host:port or unix:///path.sock")
    parser.add_argument("--api-key-env", help="environment variable holding the remote API key")
    parser.add_argument("--prompt-format", choices=["auto", "token_ids", "text"], default="auto",
                        help="openai backend: prompt as token ids, text, or auto (default)")
    parser.add_argument("--request-timeout", type=float, default=30.0,
                        help="remote: seconds without an answer before giving up (default: %(default)s)")
    parser.add_argument("--ca-cert", help="remote: PEM file of the CA that signs the server's certificate")


def remote_settings(args: argparse.Namespace) -> dict:
    """The remote-backend settings the flags of ``add_remote_options`` give."""
    return {"backend": args.backend, "url": args.url, "api_key_env": args.api_key_env,
            "prompt_format": args.prompt_format, "request_timeout_s": args.request_timeout,
            "ca_cert_path": args.ca_cert}


def _add_position_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path)
    parser.add_argument("--line", type=int, required=True, help="0-based line")
    parser.add_argument("--character", type=int, required=True, help="0-based, in UTF-16 code units")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="code-llama-ls", description="Code Llama language server",
                                     epilog=EXIT_STATUS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stdio", action="store_true", help="speak LSP over stdio (the default)")
    parser.add_argument("--tcp", action="store_true", help="listen on 127.0.0.1 instead of stdio")
    parser.add_argument("--port", type=int, default=2087, help="port for --tcp (default: %(default)s)")
    commands = parser.add_subparsers(dest="command")

    complete = commands.add_parser(
        "complete", help="print the completion at a position", epilog=EXIT_STATUS_HELP,
        description="Print the model's completion at a position (0-based line and character, the character in\n"
                    "UTF-16 code units as in LSP): exactly what an editor would show there.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_position_options(complete)
    _add_model_options(complete)
    complete.add_argument("--verbose", action="store_true",
                          help="say on stderr why there is no suggestion, how the model stopped, and its tokens")

    prompt = commands.add_parser(
        "prompt", help="show the exact prompt for a position", epilog=EXIT_STATUS_HELP,
        description="Show the exact prompt the model would get at a position (0-based, as for complete).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_position_options(prompt)
    _add_model_options(prompt)
    prompt.add_argument("--json", action="store_true", help="one JSON object: ids, mode, prefix, suffix, snippets")

    bench = commands.add_parser("bench", help="benchmarks that print figures")
    bench_commands = bench.add_subparsers(dest="bench", required=True)
    overhead = bench_commands.add_parser("overhead", help="server-side time per request, by stage")
    overhead.add_argument("--requests", type=int, default=200)
    overhead.add_argument("--lines", type=int, default=10_000)
    overhead.add_argument("--max-new-tokens", type=int, default=16)
    overhead.add_argument("--json", action="store_true")
    from code_llama_ls.bench.context import add_arguments as add_context_arguments  # argparse only: cheap

    add_context_arguments(bench_commands.add_parser("context", help="cross-file context recall on the stdlib, model-free"))
    from code_llama_ls.bench.replay import add_arguments as add_replay_arguments  # argparse only: cheap

    add_replay_arguments(bench_commands.add_parser("replay", help="typing replay through the server: ours vs naive"))
    from code_llama_ls.bench.engines import add_arguments as add_engines_arguments  # argparse only: cheap

    add_engines_arguments(bench_commands.add_parser("engines", help="the in-process engines and llama-server on SmolLM2"))
    from code_llama_ls.bench.load import add_arguments as add_load_arguments  # argparse only: cheap

    add_load_arguments(bench_commands.add_parser("load", help="N language servers as a team against one inference server"))
    from code_llama_ls.bench.shape import add_arguments as add_shape_arguments  # argparse only: cheap

    add_shape_arguments(bench_commands.add_parser("shape", help="post-processing on editor states cut from real code, model-free"))
    from code_llama_ls.bench.soak import add_arguments as add_soak_arguments  # argparse only: cheap

    add_soak_arguments(bench_commands.add_parser("soak", help="one server under a scripted editor for N minutes, caches bounded small"))
    from code_llama_ls.actions.cli import add_arguments as add_action_arguments  # argparse only: cheap

    add_action_arguments(commands)
    from code_llama_ls.eval.cli import add_arguments as add_eval_arguments  # argparse only: cheap

    add_eval_arguments(commands.add_parser("eval", help="score the model on completion tasks cut from a repository",
                                           epilog=EXIT_STATUS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter))
    from code_llama_ls.model_server import add_arguments as add_model_server_arguments

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


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(
        model=args.model,
        tokenizer=args.tokenizer,
        max_context_tokens=args.max_context_tokens,
        max_new_tokens=args.max_new_tokens,
        fim_mode=args.fim_mode,
        infilling=args.infilling,
        device=args.device,
        local_files_only=args.local_files_only,
        compile="off",  # a one-shot command ends before a background compile would pay off (or finish)
        **remote_settings(args),
    )


def _open_at(args: argparse.Namespace):
    document = read_document(args.file)
    return document, position_offset(document, args.file, args.line, args.character)


def _context(file: Path, settings: Settings):
    """A context engine rooted at the file's repository (the nearest folder with .git)."""
    from code_llama_ls.context.engine import ContextEngine
    from code_llama_ls.documents import DocumentStore

    return ContextEngine(lambda: settings, DocumentStore(), [repository_root(file)])


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
    from code_llama_ls.runtime import RuntimeEvents, RuntimeManager

    settings = _settings(args)
    events = RuntimeEvents(
        status=lambda state, message: None,
        progress_begin=_say,
        progress_report=lambda message, pct: _say(message),
        progress_end=lambda message: None,
        error=lambda message: None,  # the load's BackendError reaches main(), which prints it once
    )
    runtime = RuntimeManager(lambda: settings, events)
    return settings, runtime, CompletionEngine(runtime.get, lambda: settings, context=_context(args.file, settings))


def _say(*parts: object) -> None:
    print(*parts, file=sys.stderr)  # progress and explanations: stdout holds only the result


async def _complete(args: argparse.Namespace) -> int:
    from code_llama_ls.completion.engine import NoSuggestion
    from code_llama_ls.completion.postprocess import PLAIN_TEXT_NOTE
    from code_llama_ls.context.languages import PLAIN_TEXT

    document, offset = _open_at(args)
    settings, runtime, engine = await _pipeline(args)
    try:
        with _naming(args.file):
            result = await engine.suggest(document, offset)
    finally:
        await runtime.close()
    stopped = f"the model stopped: {result.stop_reason}, after {_count(result.tokens, 'token')}"
    if args.verbose and document.language == PLAIN_TEXT:
        _say(PLAIN_TEXT_NOTE)
    if isinstance(result, NoSuggestion):
        if args.verbose:
            _say(f"no suggestion: {result.reason} ({stopped})")
        return EXIT_NOTHING
    if args.verbose:
        _say(stopped)
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


def _prompt(args: argparse.Namespace) -> int:
    from code_llama_ls.completion.engine import CompletionEngine, build_prompt
    from code_llama_ls.hub import load_failure, load_settings
    from code_llama_ls.prompts.tokenization import ModelTokenizer, TokenizerError
    from code_llama_ls.runtime import detect_capabilities

    document, offset = _open_at(args)
    settings = _settings(args)
    context = _context(args.file, settings)
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
        return asyncio.run(_complete(args))
    if args.command == "prompt":
        return _prompt(args)
    if args.command in ("explain", "docstring", "tests"):
        from code_llama_ls.actions import cli as actions_cli

        return actions_cli.main(args)
    if args.command == "eval":
        from code_llama_ls.eval import cli as eval_cli

        return eval_cli.main(args)
    if args.command == "model-server":
        from code_llama_ls import model_server

        return model_server.main(args)
    if args.command == "bench" and args.bench == "context":
        from code_llama_ls.bench import context

        return context.main(args)
    if args.command == "bench" and args.bench == "engines":
        from code_llama_ls.bench import engines

        return engines.main(args)
    if args.command == "bench" and args.bench == "load":
        from code_llama_ls.bench import load

        return load.main(args)
    if args.command == "bench" and args.bench == "shape":
        from code_llama_ls.bench import shape

        return shape.main(args)
    if args.command == "bench" and args.bench == "soak":
        from code_llama_ls.bench import soak

        return soak.main(args)
    if args.command == "bench" and args.bench == "replay":
        from code_llama_ls.bench import replay

        return replay.main(args)
    if args.command == "bench":
        from code_llama_ls.bench import overhead

        return overhead.main(args)
    from code_llama_ls.server import serve_stdio, serve_tcp

    if args.tcp:
        serve_tcp(args.port)
    else:
        serve_stdio()
    return EXIT_OK
