"""``code-llama-ls eval [PATH]``: score the configured model on tasks cut from a repository.

Argument parsing stays cheap (the main parser is built for every command); the pipeline, the
grammars and matplotlib are imported when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from code_llama_ls.cli.common import loading_events, repository_root, say
from code_llama_ls.exits import EXIT_INPUT, EXIT_OK, CliError
from code_llama_ls.options import MODEL, REMOTE, add_settings_options, settings_from
from code_llama_ls.languages import LANGUAGES

if TYPE_CHECKING:
    from code_llama_ls.eval.metrics import Score
    from code_llama_ls.eval.run import Result, Variant
    from code_llama_ls.eval.tasks import Task
    from code_llama_ls.settings import Settings

DEFAULT_LIMIT = 30
DESCRIPTION = """\
Cut completion tasks from a repository (line: the rest of a line; block: the rest of a block;
call_args: the arguments of a call to a function of another file), run the model on each through
the language server's own pipeline, and score the suggestions per task kind and variant: context
on and off, and where the model infills, PSM and SPM (--fim-mode psm or spm runs only that one).

Defaults fit a laptop CPU: --max-context-tokens 2048, --max-new-tokens 64. Each result is cached
(~/.cache/code-llama-ls/eval, or $CODE_LLAMA_LS_EVAL_CACHE), so an interrupted run resumes."""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.add_argument("path", nargs="?", type=Path, metavar="PATH",
                        help="the repository (default: the current folder's repository root)")
    add_settings_options(parser, MODEL + REMOTE, defaults={"max_context_tokens": 2048, "max_new_tokens": 64})
    parser.add_argument("--limit", type=_positive, default=DEFAULT_LIMIT,
                        help="tasks in all, balanced across kinds (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="which tasks, in which order (default: %(default)s)")
    parser.add_argument("--language", action="append", choices=[spec.name for spec in LANGUAGES],
                        help="only files of this language (repeatable; default: all; block and call_args: Python)")
    parser.add_argument("--include-tests", action="store_true",
                        help="cut tasks from test files too (left out by default: their lines repeat one another)")
    parser.add_argument("--json", action="store_true", help="one JSON object: tasks, metrics, settings")
    parser.add_argument("--html", type=Path, metavar="FILE", help="also write a one-page report with plots")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write cached results")
    parser.add_argument("--quiet", action="store_true", help="no progress bar nor loading messages")


def main(args: argparse.Namespace) -> int:
    return asyncio.run(_evaluate(args))


def _root(path: Path | None) -> Path:
    if path is None:
        return repository_root(Path.cwd() / "_")  # it takes a file: any name in the current folder
    if path.is_dir():
        return path.resolve()
    if path.exists():
        raise CliError(f"{path} is a file; eval reads a repository's folder", EXIT_INPUT)
    raise CliError(f"{path}: no such folder", EXIT_INPUT)


async def _evaluate(args: argparse.Namespace) -> int:
    from code_llama_ls.context.privacy import IgnoreRules
    from code_llama_ls.eval.cache import ResultCache, default_folder
    from code_llama_ls.eval.run import Runner, evaluate, variants
    from code_llama_ls.eval.tasks import cut_tasks, source_files

    root = _root(args.path)
    if args.html is not None:
        _check_html(args.html)
    settings = settings_from(args, compile="off", completion_cache_entries=0, debounce_ms=0)
    files = source_files(root, IgnoreRules([root], settings.ignore_patterns), args.include_tests)
    tasks = cut_tasks(files, args.seed, args.limit, set(args.language) if args.language else None)
    if not tasks:
        languages = ", ".join(args.language) if args.language else "source"
        raise CliError(f"{root}: no completion tasks: no {languages} files with code outside tests and ignored "
                       f"paths{'' if args.include_tests else ' (--include-tests takes tests too)'}", EXIT_INPUT)
    runner = Runner(settings, root, files, None if args.no_cache else ResultCache(default_folder()),
                    loading_events((lambda *parts: None) if args.quiet else say))
    try:
        chosen = variants(await runner.infilling(), args.fim_mode)
        with _progress(len(tasks) * len(chosen), args.quiet) as bar:
            results = await evaluate(runner, tasks, chosen, bar.update)
    finally:
        await runner.close()
    scores = _scores(tasks, results)
    _output(args, _report(args, root, settings, tasks, chosen, results, scores), scores)
    return EXIT_OK


def _check_html(path: Path) -> None:
    """What would make ``--html`` fail, said before the run rather than after it."""
    from code_llama_ls.eval.report import require_matplotlib

    require_matplotlib()
    if not path.parent.is_dir():
        raise CliError(f"{path}: no folder {path.parent} to write the report in", EXIT_INPUT)


def _progress(total: int, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, file=sys.stderr, unit="request", disable=quiet or not sys.stderr.isatty())


def _scores(tasks: Sequence[Task], results: Sequence[Result]) -> list[Score]:
    from code_llama_ls.eval.metrics import parses, score

    original_parses = {task.path: parses(task.text, task.language) for task in tasks}
    return [score(r.task.kind, r.variant, r.task.document, r.task.cursor, r.task.target, r.task.language,
                  original_parses[r.task.path], r.outcome) for r in results]


def _report(args: argparse.Namespace, root: Path, settings: Settings, tasks: Sequence[Task],
            chosen: Sequence[Variant], results: Sequence[Result], scores: Sequence[Score]) -> dict:
    """The ``--json`` object."""
    from code_llama_ls.eval.metrics import summarise
    from code_llama_ls.eval.tasks import KINDS

    cached = sum(r.from_cache for r in results)
    used = settings.model_dump(mode="json", exclude={"context_enabled", "fim_mode"})
    return {
        "repository": str(root),
        "tasks": {"total": len(tasks), "by_kind": {kind: sum(t.kind == kind for t in tasks) for kind in KINDS}},
        "variants": [variant.name for variant in chosen],
        "results": {"total": len(results), "from_cache": cached, "generated": len(results) - cached},
        "metrics": summarise(scores),
        "settings": {**used, "seed": args.seed, "limit": args.limit, "languages": args.language,
                     "include_tests": args.include_tests},
    }


def _output(args: argparse.Namespace, report: dict, scores: Sequence[Score]) -> None:
    import json

    from code_llama_ls.eval.report import html_page, table

    if args.html is not None:
        try:
            args.html.write_text(html_page(report, scores), encoding="utf-8")
        except OSError as exc:
            raise CliError(f"{args.html}: cannot write the report ({exc.strerror or exc})", EXIT_INPUT) from None
    print(json.dumps(report, ensure_ascii=False) if args.json else table(report))
