"""``code-llama-ls bench context``: does the prompt carry the definition the cursor needs?

Model-free. Tasks are cut from the Python standard library with a fixed seed: a line inside a
function that calls a name imported from another stdlib module, either ``from m import x`` …
``x(`` or ``import m`` … ``m.x(`` (or ``m.sub.x(``, as in ``os.path.join(``), with the cursor right after the opening bracket. The gold is
the ``def``/``class`` the name statically resolves to, found here by a scan of our own (``ast``
parses the target's source; nothing is imported or run), re-exports followed; tasks whose gold
is missing, not a function or class, or in the task's own file are skipped.

Each task's prompt is built by the real pipeline (``build_prompt`` with the ``ContextEngine``)
at ``--max-context-tokens`` (1024), and counts as a hit when the gold's first signature line is
in it verbatim. Two baselines run on the same tasks: the plain budgeted prompt (in-file only),
and BM25 over 20-line windows of the other sampled stdlib files (query: the 20 lines up to the
cursor), whose best windows fill the same context budget rendered like the engine's blocks.

Overhead: time to apply one keystroke to a 10,000-line document and build context + prompt,
index warm, default CPU budget (4096 tokens).
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import random
import re
import sys
import sysconfig
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from typing import TYPE_CHECKING

from benchmarks.stats import p50_p95

if TYPE_CHECKING:  # the CLI imports this module to build its parser: keep the import light
    from code_llama_ls.documents import Document
    from code_llama_ls.prompts.tokenization import ModelTokenizer

DEFAULT_TASKS = 320
SMOKE_TASKS = 30
DEFAULT_SEED = 20261
MAX_CONTEXT_TOKENS = 1024
TASKS_PER_FILE = 3
TASKS_PER_GOLD = 3  # keeps a popular definition (codecs.CodecInfo …) from filling the sample
WINDOW_LINES = 20
WARM_STRIDE = 50  # the overhead run first builds a prompt every 50 lines: the index is warm
WINDOW_STRIDE = 10
EXCLUDED_PARTS = frozenset({
    "site-packages", "dist-packages", "test", "tests", "idle_test", "__phello__", "turtledemo",
    "pydoc_data", "ensurepip", "lib2to3",
})
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # BM25 terms (the baseline's tokenizer, not parsing)


@dataclass(frozen=True)
class Task:
    path: Path  # the file the task is cut from (the whole file is the document)
    offset: int  # string offset right after the call's "("
    call: str  # the callee as written: "x" or "m.x"
    form: str  # "from" (from m import x … x(), "module" (import m … m.x(), "submodule" (m.sub.x()
    gold_path: Path
    gold_line: str  # the gold definition's first signature line, verbatim
    gold_lineno: int  # 1-based


# -- the standard library, read statically ------------------------------------------------------


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_files(root: Path) -> list[Path]:
    files = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if any(p in EXCLUDED_PARTS or p.startswith("config-") for p in parts):
            continue
        files.append(path)
    return files


class StaticStdlib:
    """Module names → files and names → their ``def``/``class``, from source text alone."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @lru_cache(maxsize=None)
    def source(self, path: Path) -> str | None:
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    @lru_cache(maxsize=None)
    def tree(self, path: Path) -> ast.Module | None:
        text = self.source(path)
        if text is None:
            return None
        try:
            return ast.parse(text)
        except (SyntaxError, ValueError):
            return None

    def module_file(self, dotted: str, from_path: Path | None = None, level: int = 0) -> Path | None:
        if level:
            if from_path is None:
                return None
            base = from_path.parent
            for _ in range(level - 1):
                base = base.parent
        else:
            base = self.root
            dotted = {"os.path": "posixpath"}.get(dotted, dotted)
        folder = base.joinpath(*dotted.split(".")) if dotted else base
        for candidate in (folder / "__init__.py", folder.with_name(folder.name + ".py") if dotted else None):
            if candidate is not None and candidate.is_file():
                return candidate
        return None

    def top_level(self, path: Path) -> tuple[dict[str, ast.AST], dict[str, tuple[ast.ImportFrom, str]],
                                             list[ast.ImportFrom], list[str] | None, set[str]]:
        """defs, from-imports by bound name (with the imported name), star imports, ``__all__``,
        names bound otherwise (assignments, module imports)."""
        return self._top_level(path)

    @lru_cache(maxsize=None)
    def _top_level(self, path: Path):
        tree = self.tree(path)
        defs: dict[str, ast.AST] = {}
        froms: dict[str, tuple[ast.ImportFrom, str]] = {}
        stars: list[ast.ImportFrom] = []
        exported: list[str] | None = None
        other: set[str] = set()
        if tree is None:
            return defs, froms, stars, exported, other

        def visit(body: list[ast.stmt]) -> None:
            nonlocal exported
            for stmt in body:
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    defs.setdefault(stmt.name, stmt)
                elif isinstance(stmt, ast.ImportFrom):
                    for alias in stmt.names:
                        if alias.name == "*":
                            stars.append(stmt)
                        else:
                            froms.setdefault(alias.asname or alias.name, (stmt, alias.name))
                elif isinstance(stmt, ast.Import):
                    for alias in stmt.names:
                        other.add(alias.asname or alias.name.split(".")[0])
                elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                    for target in targets:
                        for node in ast.walk(target):
                            if isinstance(node, ast.Name):
                                other.add(node.id)
                                if node.id == "__all__" and isinstance(stmt.value, (ast.List, ast.Tuple)):
                                    exported = [e.value for e in stmt.value.elts
                                                if isinstance(e, ast.Constant) and isinstance(e.value, str)]
                elif isinstance(stmt, ast.If):
                    visit(stmt.body)
                    visit(stmt.orelse)
                elif isinstance(stmt, ast.Try):
                    visit(stmt.body)
                    for handler in stmt.handlers:
                        visit(handler.body)
                    visit(stmt.orelse)
                    visit(stmt.finalbody)

        visit(tree.body)
        return defs, froms, stars, exported, other

    def gold(self, path: Path, name: str, hops: int = 3) -> tuple[Path, int] | None:
        """The file and 1-based line of the ``def``/``class`` that ``name`` is in ``path``."""
        defs, froms, stars, _, other = self.top_level(path)
        if name in defs:
            return path, defs[name].lineno
        if hops <= 0:
            return None
        if name in froms:
            stmt, original = froms[name]
            target = self.module_file(stmt.module or "", path, stmt.level)
            return self.gold(target, original, hops - 1) if target is not None else None
        if name in other:
            return None  # bound by an assignment or a module import: not a def/class
        for stmt in stars:
            target = self.module_file(stmt.module or "", path, stmt.level)
            if target is None:
                continue
            exported = self.top_level(target)[3]
            if (exported is not None and name not in exported) or (exported is None and name.startswith("_")):
                continue
            found = self.gold(target, name, hops - 1)
            if found is not None:
                return found
        return None


# -- cutting tasks --------------------------------------------------------------------------------


def _line_offsets(text: str) -> list[int]:
    offsets, total = [], 0
    for line in text.splitlines(keepends=True):
        offsets.append(total)
        total += len(line)
    return offsets


def _candidates(stdlib: StaticStdlib, path: Path) -> list[tuple[int, int, str, str, Path, int]]:
    """(line, byte column after the callee, call, form, gold path, gold line) for each call."""
    tree = stdlib.tree(path)
    if tree is None:
        return []
    defs, froms, _, _, other = stdlib.top_level(path)
    from_bindings: dict[str, tuple[ast.ImportFrom, str]] = dict(froms)
    modules: dict[str, str] = {}  # local name → dotted module: ``import m``, ``import m as n``, ``import a.b`` (a)
    for stmt in tree.body:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname:
                    modules[alias.asname] = alias.name
                else:
                    head = alias.name.split(".")[0]
                    modules.setdefault(head, head)
    out = []
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        params = {a.arg for a in ast.walk(function.args) if isinstance(a, ast.arg)}
        for call in ast.walk(function):
            if not isinstance(call, ast.Call):
                continue
            callee = call.func
            found = None
            if isinstance(callee, ast.Name) and callee.id in from_bindings and callee.id not in defs \
                    and callee.id not in params:
                stmt, original = from_bindings[callee.id]
                target = stdlib.module_file(stmt.module or "", path, stmt.level)
                if target is not None:
                    found = (callee.id, "from", stdlib.gold(target, original))
            elif isinstance(callee, ast.Attribute) and isinstance(callee.value, ast.Name) \
                    and callee.value.id in modules and callee.value.id not in params and callee.value.id not in defs:
                target = stdlib.module_file(modules[callee.value.id])
                if target is not None:
                    found = (f"{callee.value.id}.{callee.attr}", "module", stdlib.gold(target, callee.attr))
            elif isinstance(callee, ast.Attribute) and isinstance(callee.value, ast.Attribute) \
                    and isinstance(callee.value.value, ast.Name) and callee.value.value.id in modules \
                    and callee.value.value.id not in params and callee.value.value.id not in defs:
                head = callee.value.value.id  # import m … m.sub.x(  (os.path.join, xml.dom.minidom …)
                target = stdlib.module_file(f"{modules[head]}.{callee.value.attr}")
                if target is not None:
                    found = (f"{head}.{callee.value.attr}.{callee.attr}", "submodule", stdlib.gold(target, callee.attr))
            if found is None or found[2] is None or found[2][0] == path:
                continue
            if callee.end_lineno is None or callee.end_col_offset is None:
                continue
            out.append((callee.end_lineno, callee.end_col_offset, found[0], found[1], *found[2]))
    return out


def cut_tasks(count: int, seed: int, root: Path | None = None) -> tuple[list[Task], StaticStdlib]:
    root = root or stdlib_dir()
    stdlib = StaticStdlib(root)
    files = stdlib_files(root)
    rng = random.Random(seed)
    rng.shuffle(files)
    tasks: list[Task] = []
    per_gold: Counter[tuple[Path, int]] = Counter()
    for path in files:
        if len(tasks) >= count:
            break
        text = stdlib.source(path)
        if text is None:
            continue
        candidates = _candidates(stdlib, path)
        rng.shuffle(candidates)
        lines = text.splitlines(keepends=True)
        starts = _line_offsets(text)
        taken: set[str] = set()
        for lineno, byte_col, call, form, gold_path, gold_lineno in candidates:
            if len(taken) >= TASKS_PER_FILE or len(tasks) >= count or call in taken \
                    or per_gold[gold_path, gold_lineno] >= TASKS_PER_GOLD:
                continue
            line = lines[lineno - 1]
            column = len(line.encode("utf-8")[:byte_col].decode("utf-8", "replace"))
            if line[column:column + 1] != "(":
                continue
            gold_source = stdlib.source(gold_path)
            if gold_source is None:
                continue
            gold_line = gold_source.splitlines()[gold_lineno - 1].rstrip()
            taken.add(call)
            per_gold[gold_path, gold_lineno] += 1
            tasks.append(Task(path, starts[lineno - 1] + column + 1, call, form, gold_path, gold_line, gold_lineno))
    return tasks, stdlib


# -- tokenizer and prompts ----------------------------------------------------------------------


def bench_tokenizer() -> ModelTokenizer:
    """The Code Llama tokenizer replica when present, else the fallback BPE (no model loaded)."""
    from benchmarks import tiny_model
    from code_llama_ls.prompts.tokenization import ModelTokenizer

    folder = tiny_model.fixture_tokenizer_dir()
    if folder is None:
        folder = tiny_model._tokenizer_source(tiny_model._cache_root(None), None)
    return ModelTokenizer.from_file(Path(folder) / "tokenizer.json")


def _hit(prompt, task: Task) -> bool:
    return task.gold_line in prompt.prefix or task.gold_line in prompt.suffix


# -- BM25 baseline ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    path: Path
    start_line: int  # 0-based
    text: str


class BM25:
    def __init__(self, windows: list[Window], k1: float = 1.2, b: float = 0.75) -> None:
        self.windows = windows
        self.k1, self.b = k1, b
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self.lengths: list[int] = []
        for index, window in enumerate(windows):
            terms = Counter(terms_of(window.text))
            self.lengths.append(sum(terms.values()))
            for term, tf in terms.items():
                self.postings[term].append((index, tf))
        self.average = (sum(self.lengths) / len(self.lengths)) if self.lengths else 1.0
        n = len(windows)
        self.idf = {t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in self.postings.items()}

    def search(self, query: str, exclude: Path | None = None, limit: int = 20) -> list[Window]:
        scores: dict[int, float] = defaultdict(float)
        for term in set(terms_of(query)):
            idf = self.idf.get(term)
            if idf is None:
                continue
            for index, tf in self.postings[term]:
                length = self.lengths[index]
                scores[index] += idf * tf * (self.k1 + 1) / (tf + self.k1 * (1 - self.b + self.b * length / self.average))
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        out = []
        for index, _ in ranked:
            if exclude is not None and self.windows[index].path == exclude:
                continue
            out.append(self.windows[index])
            if len(out) >= limit:
                break
        return out


def terms_of(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def windows_of(path: Path, text: str) -> list[Window]:
    lines = text.splitlines(keepends=True)
    out = []
    for start in range(0, max(1, len(lines) - WINDOW_LINES + WINDOW_STRIDE), WINDOW_STRIDE):
        chunk = "".join(lines[start:start + WINDOW_LINES])
        if chunk.strip():
            out.append(Window(path, start, chunk))
    return out


def query_window(text: str, offset: int) -> str:
    """The 20 lines that end at the cursor (the cursor line up to the cursor)."""
    start = offset
    for _ in range(WINDOW_LINES):
        newline = text.rfind("\n", 0, start - 1 if start > 0 else 0)
        if newline == -1:
            start = 0
            break
        start = newline + 1
    return text[start:offset]


# -- running -------------------------------------------------------------------------------------


def run(tasks_wanted: int = DEFAULT_TASKS, seed: int = DEFAULT_SEED, overhead_requests: int = 200,
        max_context_tokens: int = MAX_CONTEXT_TOKENS) -> dict:
    from code_llama_ls.prompts.at_cursor import build_prompt
    from code_llama_ls.context import engine as context_engine
    from code_llama_ls.documents import DocumentStore
    from code_llama_ls.settings import Settings

    started = time.perf_counter()
    tasks, stdlib = cut_tasks(tasks_wanted, seed)
    tokenizer = bench_tokenizer()
    settings = Settings(model="bench", max_context_tokens=max_context_tokens, local_files_only=True)
    root = stdlib.root
    documents = DocumentStore()
    engine = context_engine.ContextEngine(lambda: settings, documents, [root])

    sample = sorted({t.path for t in tasks} | {t.gold_path for t in tasks})
    windows = [w for path in sample for w in windows_of(path, stdlib.source(path) or "")]
    bm25 = BM25(windows)
    bm25_context = BM25Context(bm25, root)

    hits = {"context": 0, "infile": 0, "bm25": 0}
    misses: list[dict] = []
    by_form: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for task in tasks:
        text = stdlib.source(task.path) or ""
        document = documents.open(task.path.as_uri(), text, 1, "python")
        with_context = build_prompt(document, task.offset, tokenizer, settings, "cpu", context=engine)
        plain = build_prompt(document, task.offset, tokenizer, settings, "cpu")
        bm25_prompt = build_prompt(document, task.offset, tokenizer, settings, "cpu", context=bm25_context)
        documents.close(document.uri)
        hit = _hit(with_context, task)
        hits["context"] += hit
        hits["infile"] += _hit(plain, task)
        hits["bm25"] += _hit(bm25_prompt, task)
        by_form[task.form][0] += hit
        by_form[task.form][1] += 1
        if not hit:
            misses.append({"file": str(task.path.relative_to(root)), "line": text[:task.offset].count("\n") + 1,
                           "call": task.call, "gold": f"{task.gold_path.relative_to(root)}:{task.gold_lineno}",
                           "gold_line": task.gold_line})
    cut_and_recall_s = time.perf_counter() - started
    overhead = measure_overhead(tokenizer, overhead_requests)
    n = max(1, len(tasks))
    return {
        "tasks": len(tasks),
        "recall": round(hits["context"] / n, 4),
        "recall_infile": round(hits["infile"] / n, 4),
        "recall_bm25": round(hits["bm25"] / n, 4),
        "overhead_p50_ms": overhead["p50_ms"],
        "overhead_p95_ms": overhead["p95_ms"],
        "overhead_stages_ms": overhead["stages"],
        "recall_by_form": {form: round(h / max(1, t), 4) for form, (h, t) in sorted(by_form.items())},
        "tasks_by_form": {form: t for form, (_, t) in sorted(by_form.items())},
        "seed": seed,
        "max_context_tokens": max_context_tokens,
        "tokenizer": "codellama-replica" if "codellama-tokenizer" in (tokenizer.name or "") else "fallback-bpe",
        "sample_files": len(sample),
        "bm25_windows": len(windows),
        "overhead_requests": overhead_requests,
        "recall_seconds": round(cut_and_recall_s, 1),
        "misses": misses,
    }


class BM25Context:
    """The BM25 baseline behind the context engine's interface (``collect``), so that its windows
    are rendered and packed exactly like the engine's blocks."""

    def __init__(self, index: BM25, root: Path) -> None:
        self.index = index
        self.root = root

    def collect(self, document: Document, offset: int) -> list:
        from code_llama_ls.context.base import ContextBlock

        path = _path_of(document.uri)
        windows = self.index.search(query_window(document.text, offset), exclude=path)
        return [ContextBlock("snippet", _display(w.path, self.root), w.text.rstrip("\n")) for w in windows]


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _path_of(uri: str) -> Path | None:
    from urllib.parse import unquote, urlparse

    return Path(unquote(urlparse(uri).path)) if uri.startswith("file:") else None


class _Timed:
    """The engine behind a stopwatch: how much of ``build_prompt`` is collecting context."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.last_ms = 0.0

    def collect(self, document: Document, offset: int) -> list:
        began = time.perf_counter()
        blocks = self.engine.collect(document, offset)
        self.last_ms = (time.perf_counter() - began) * 1000
        return blocks


def measure_overhead(tokenizer: ModelTokenizer, requests: int, lines: int = 10_000) -> dict:
    """One keystroke + context + prompt on a 10,000-line file, warm index, default CPU budget.

    The total runs from the edit to the finished prompt ids; stages: the edit itself, the
    incremental reparse (documents parse lazily, on the first use of the tree), collecting
    context, and packing + encoding the prompt. Each keystroke is undone (untimed) before the
    next, at another random line.
    """
    import tempfile

    from benchmarks.overhead import python_file
    from code_llama_ls.prompts.at_cursor import build_prompt
    from code_llama_ls.context.engine import ContextEngine
    from code_llama_ls.documents import DocumentStore
    from code_llama_ls.settings import Settings

    settings = Settings(model="bench", local_files_only=True)  # default budget on CPU: 4096
    stages: dict[str, list[float]] = {"document_update": [], "parse": [], "context": [], "prompt": []}
    totals: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-context-") as folder:
        root = Path(folder)
        path = root / "big.py"
        text = python_file(lines)
        path.write_text(text, encoding="utf-8")
        documents = DocumentStore()
        document = documents.open(path.as_uri(), text, 1, "python")
        engine = _Timed(ContextEngine(lambda: settings, documents, [root]))
        for line in range(lines // 10, lines, WARM_STRIDE):  # warm: the modules it imports are indexed
            build_prompt(document, document.line_range(line)[1], tokenizer, settings, "cpu", context=engine)
        rng = random.Random(7)
        for i in range(requests + 5):
            line = rng.randrange(lines // 10, lines - 10)
            _, end = document.line_range(line)
            position = document.position_at(end)
            began = time.perf_counter()
            document.apply_change("x", position, position)  # one keystroke at the end of a line
            document.version += 1
            updated = time.perf_counter()
            document.tree  # the reparse build_prompt would otherwise trigger
            parsed = time.perf_counter()
            build_prompt(document, end + 1, tokenizer, settings, "cpu", context=engine)
            done = time.perf_counter()
            # Undo the keystroke, untimed: each measured keystroke meets the real file with one
            # fresh syntax error, not the hundreds that keystrokes left everywhere would add up to.
            document.apply_change("", position, document.position_at(end + 1))
            document.version += 1
            document.tree
            if i < 5:  # the first keystrokes warm the incremental parse
                continue
            totals.append((done - began) * 1000)
            stages["document_update"].append((updated - began) * 1000)
            stages["parse"].append((parsed - updated) * 1000)
            stages["context"].append(engine.last_ms)
            stages["prompt"].append((done - parsed) * 1000 - engine.last_ms)
    return {**p50_p95(totals),
            "stages": {name: p50_p95(v)
                       for name, v in stages.items()}}


def main(args: argparse.Namespace) -> int:
    wanted = SMOKE_TASKS if args.smoke else args.tasks
    requests = 40 if args.smoke else args.requests
    result = run(wanted, args.seed, requests, args.max_context_tokens)
    misses = result.pop("misses")
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['tasks']} tasks from the standard library (seed {result['seed']}), "
          f"maxContextTokens {result['max_context_tokens']}, tokenizer {result['tokenizer']}")
    print(f"{'recall (context engine)':<32}{result['recall']:>8.3f}")
    print(f"{'recall (in-file only)':<32}{result['recall_infile']:>8.3f}")
    print(f"{'recall (BM25, 20-line windows)':<32}{result['recall_bm25']:>8.3f}")
    for form, value in result["recall_by_form"].items():
        print(f"{'  ' + form + ' (' + str(result['tasks_by_form'][form]) + ' tasks)':<32}{value:>8.3f}")
    print(f"{'overhead p50 / p95 ms':<32}{result['overhead_p50_ms']:>8.2f} / {result['overhead_p95_ms']:.2f}")
    for stage, values in result["overhead_stages_ms"].items():
        print(f"{'  ' + stage:<32}{values['p50_ms']:>8.2f} / {values['p95_ms']:.2f}")
    if args.show_misses:
        for miss in misses:
            print(f"miss: {miss['file']}:{miss['line']} {miss['call']}( -> {miss['gold']}  {miss['gold_line']}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--tasks", type=int, default=DEFAULT_TASKS, help="tasks to cut (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_TASKS} tasks and a short overhead run")
    parser.add_argument("--requests", type=int, default=200, help="keystrokes timed for the overhead")
    parser.add_argument("--max-context-tokens", type=int, default=MAX_CONTEXT_TOKENS)
    parser.add_argument("--show-misses", action="store_true", help="list the tasks whose gold is not in the prompt")


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
