"""``code-llama-ls bench soak``: one language server under a scripted editor for N minutes.

The real server (``python -m code_llama_ls --stdio``) runs the trained tiny model with every cache
bound set small (:data:`SOAK_BOUNDS`), so that each cache fills and evicts within the first minute.
A seeded editor keeps :data:`OPEN_FILES` files of a temporary workspace open and works in bursts:
it jumps to a line and types a statement at 80-150 ms a key, 300-600 ms after the end of a word
(``didChange`` per key, an automatic ``inlineCompletion`` per key, the previous unanswered one
cancelled with ``$/cancelRequest``), sometimes asks by hand (invoked), sometimes asks ``codeLlama/explain`` about a function
(some of those cancelled), undoes half of its lines, and now and then closes a file and opens a
new one. Typed imports and calls name the workspace's packages, so the context engine resolves and
parses them (index, symbol tables, ignore files) and every prompt is new (KV and completion caches).

Each minute: requests served, errors, p50/p95 latency of answered completions, each cache's
largest size against its bound (``codeLlama/engineStats``, sampled every :data:`SAMPLE_S`), the
server's RSS and Python heap. An error is an LSP error response other than RequestCancelled, a
Warning or Error message from the server, a request unanswered after :data:`REQUEST_TIMEOUT_S`, or
the server exiting. The verdict: errors, whether every cache stayed within its bound, the last
minute's p95 against minute 2's (target ≤ 1.2×), and RSS growth from the end of the first minute by
which every cache had filled (reached :data:`FULL_SHARE` of its bound) to the end (target < 10 %).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.lsp_window import Window, plain
from benchmarks.stats import p50_p95

SOAK_BOUNDS = {"kvCacheMb": 1, "completionCacheEntries": 16, "tokenizerLineCache": 256, "indexMaxFiles": 8,
               "contextCacheEntries": 4, "snippetRegions": 8, "engineStatsEvents": 64}
SERVER_OPTIONS = {"localFilesOnly": True, "device": "cpu", "maxContextTokens": 640, "maxNewTokens": 16,
                  "instructMaxNewTokens": 24}
OPEN_FILES = 4
LIBRARIES = 12
HANDLERS = 36  # six lines each: longer than the 200 lines from which a file's outline goes into prompts
MINUTE_S = 60.0
SAMPLE_S = 10.0
FULL_SHARE = 0.5
MAX_MINUTES = 120.0
REQUEST_TIMEOUT_S = 30.0
P95_RATIO_TARGET = 1.2
RSS_GROWTH_TARGET = 0.10
P_INVOKED, P_EXPLAIN, P_CANCEL_EXPLAIN, P_UNDO, P_REPLACE = 0.5, 0.15, 0.3, 0.5, 0.2
_WARNING = 2  # MessageType: Error = 1, Warning = 2

LIBRARY_SOURCE = '''"""Tools of lib{i}."""


def scale_{i}(value, factor):
    """Multiply ``value`` by ``factor``."""
    return value * factor


class Counter{i}:
    """Counts what it is given."""

    def __init__(self):
        self.count = 0

    def add(self, amount):
        """The count after adding ``amount``."""
        return self.count + amount
'''
HANDLER = "def handler_{k}(items):\n    total = 0\n    for item in items:\n        total += scale_{i}(item, {k})\n" \
          "    return total\n\n"


# -- the workspace and the editor's files ----------------------------------------------------


def build_workspace(root: Path) -> None:
    """:data:`LIBRARIES` packages, each with its own ``.gitignore`` (ignore files are cached too)."""
    (root / ".gitignore").write_text("*.log\n")
    for i in range(LIBRARIES):
        package = root / f"lib{i}"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / ".gitignore").write_text("*.tmp\n")
        (package / "tools.py").write_text(LIBRARY_SOURCE.format(i=i))


def editor_text(rng: random.Random, number: int) -> str:
    libraries = rng.sample(range(LIBRARIES), 3)
    head = "".join(f"from lib{i}.tools import Counter{i}, scale_{i}\n" for i in libraries)
    body = "".join(HANDLER.format(k=k, i=rng.choice(libraries)) for k in range(HANDLERS))
    return f'"""Work file {number}."""\n{head}import json\nimport os\n\n\n{body}'


def statement(rng: random.Random) -> tuple[str, bool]:
    """A line to type, and whether it goes at the top of the file (an import)."""
    i, n = rng.randrange(LIBRARIES), rng.randrange(100)
    return rng.choice([(f"    result = scale_{i}(total, {n})", False), (f"    counter = Counter{i}().add({n})", False),
                       (f"    data = json.dumps(items) + os.sep * {n}", False),
                       (f"from lib{i}.tools import scale_{i}", True)])


def _word_ends(text: str, index: int) -> bool:
    """A pause follows the last character of a word or of the line (as in ``bench replay``)."""
    here, after = text[index], text[index + 1:index + 2]
    return here == "\n" or ((here.isalnum() or here == "_") and not (after.isalnum() or after == "_"))


@dataclass
class OpenFile:
    uri: str
    lines: list[str]
    version: int = 1


@dataclass
class Request:
    kind: str  # completion | explain
    sent: float  # seconds since the soak started
    outcome: str = "pending"  # served | cancelled | error
    latency_ms: float = 0.0


@dataclass
class Record:
    """Everything the soak saw, in time order."""

    requests: list[Request] = field(default_factory=list)
    errors: list[tuple[float, str]] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)


# -- the scripted editor ---------------------------------------------------------------------


class Editor:
    """Types into the open files as a fast human would, with a seeded script."""

    def __init__(self, window: Window, root: Path, rng: random.Random, record: Record, started: float) -> None:
        self.window, self.root, self.rng, self.record, self.started = window, root, rng, record, started
        self.files: list[OpenFile] = []
        self.opened = 0
        self.pending: tuple[str, asyncio.Future] | None = None
        self.ids = 0

    def now(self) -> float:
        return time.monotonic() - self.started

    def open_new(self) -> None:
        self.opened += 1
        text = editor_text(self.rng, self.opened)
        file = OpenFile((self.root / f"work_{self.opened}.py").as_uri(), text.split("\n"))
        self.window.open(file.uri, text)
        self.files.append(file)

    def replace_a_file(self) -> None:
        from lsprotocol import types

        file = self.files.pop(self.rng.randrange(len(self.files)))
        self.window.client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=file.uri)))
        self.open_new()

    async def run(self, deadline: float) -> None:
        while self.now() < deadline and self.window.client._server.returncode is None:
            await self.burst(self.rng.choice(self.files))
            if self.rng.random() < P_REPLACE:
                self.replace_a_file()

    async def burst(self, file: OpenFile) -> None:
        """Type one line somewhere, pause, maybe ask by hand or for an explanation, maybe undo it."""
        text, at_top = statement(self.rng)
        line = 1 if at_top else self.rng.choice([n for n, t in enumerate(file.lines) if t == "    return total"])
        typed = text + "\n"
        for column, char in enumerate(typed):
            self.edit(file, line, column, line, column, char)
            pause = _word_ends(typed, column)
            if char != "\n":
                self.complete(file, line, column + 1, automatic=True, shown=pause)
            await asyncio.sleep(self.rng.uniform(0.3, 0.6) if pause else self.rng.uniform(0.08, 0.15))
        if self.rng.random() < P_INVOKED:
            await asyncio.wait([self.complete(file, line, len(text), automatic=False)], timeout=REQUEST_TIMEOUT_S)
        if self.rng.random() < P_EXPLAIN:
            await self.explain(file)
        if self.rng.random() < P_UNDO:
            self.edit(file, line, 0, line + 1, 0, "")

    def edit(self, file: OpenFile, line: int, column: int, end_line: int, end_column: int, text: str) -> None:
        from lsprotocol import types

        joined = "\n".join(file.lines)
        start = sum(len(t) + 1 for t in file.lines[:line]) + column
        end = sum(len(t) + 1 for t in file.lines[:end_line]) + end_column
        file.lines = (joined[:start] + text + joined[end:]).split("\n")
        file.version += 1
        self.window.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=file.uri, version=file.version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(line=line, character=column),
                                  end=types.Position(line=end_line, character=end_column)), text=text)]))

    def complete(self, file: OpenFile, line: int, column: int, automatic: bool, shown: bool = False) -> asyncio.Future:
        """Send an inline completion. The previous one, unanswered, is cancelled unless the user paused
        on it (its suggestion is still shown when it arrives, as in ``bench replay``)."""
        from lsprotocol import types

        if self.pending is not None and not self.pending[1].done():
            self.window.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=self.pending[0]))
        kind = types.InlineCompletionTriggerKind.Automatic if automatic else types.InlineCompletionTriggerKind.Invoked
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=file.uri),
            position=types.Position(line=line, character=column), context=types.InlineCompletionContext(trigger_kind=kind))
        request_id, future = self.send("completion", types.TEXT_DOCUMENT_INLINE_COMPLETION, params)
        self.pending = None if shown else (request_id, future)
        return future

    async def explain(self, file: OpenFile) -> None:
        """Explain a handler; sometimes cancelled while the model writes."""
        from lsprotocol import types

        start = self.rng.choice([n for n, t in enumerate(file.lines) if t.startswith("def handler_")])
        params = {"textDocument": {"uri": file.uri},
                  "range": {"start": {"line": start, "character": 0}, "end": {"line": start + 5, "character": 0}}}
        request_id, future = self.send("explain", "codeLlama/explain", params)
        if self.rng.random() < P_CANCEL_EXPLAIN:
            await asyncio.sleep(self.rng.uniform(0.05, 0.3))
            if not future.done():
                self.window.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=request_id))
        await asyncio.wait([future], timeout=REQUEST_TIMEOUT_S)

    def send(self, kind: str, method: str, params: Any) -> tuple[str, asyncio.Future]:
        self.ids += 1
        request_id = f"soak-{self.ids}"
        request = Request(kind, self.now())
        self.record.requests.append(request)
        future = asyncio.wrap_future(self.window.client.protocol.send_request(method, params, msg_id=request_id))
        future.add_done_callback(lambda done: self.finished(request, done))
        return request_id, future

    def finished(self, request: Request, future: asyncio.Future) -> None:
        from pygls.exceptions import JsonRpcRequestCancelled

        if request.outcome != "pending":  # already counted as unanswered
            return
        request.latency_ms = (self.now() - request.sent) * 1000
        error = None if future.cancelled() else future.exception()
        if future.cancelled() or isinstance(error, JsonRpcRequestCancelled):
            request.outcome = "cancelled"
        elif error is not None:
            request.outcome = "error"
            self.record.errors.append((self.now(), f"{request.kind}: {type(error).__name__}: {error}"))
        else:
            request.outcome = "served"


# -- sampling the server ---------------------------------------------------------------------


async def sample(window: Window, editor: Editor, record: Record, seen_messages: int) -> int:
    """One engineStats sample; new Warning/Error messages, unanswered requests and a dead server
    are errors. Returns how many server messages have been looked at."""
    now = editor.now()
    if window.client._server.returncode is not None:
        record.errors.append((now, f"the server exited with {window.client._server.returncode}"))
        return seen_messages
    for kind, message in window.message_log[seen_messages:]:
        if kind <= _WARNING:
            record.errors.append((now, f"server message (type {kind}): {message[:200]}"))
    for request in record.requests:
        if request.outcome == "pending" and now - request.sent > REQUEST_TIMEOUT_S:
            request.outcome = "error"
            record.errors.append((now, f"{request.kind}: no answer in {REQUEST_TIMEOUT_S:g} s"))
    stats = plain(await window.request("codeLlama/engineStats", {"events": False}))
    stats["caches"]["documents"]["bound"] = OPEN_FILES
    record.samples.append({"t": now, "caches": stats["caches"], "memory": stats["memory"]})
    return len(window.message_log)


async def sampler(window: Window, editor: Editor, record: Record, deadline: float) -> None:
    seen, tick = 0, 1
    while tick * SAMPLE_S <= deadline + 1e-9 and window.client._server.returncode is None:
        await asyncio.sleep(max(0.0, tick * SAMPLE_S - editor.now()))
        seen = await sample(window, editor, record, seen)
        tick += 1
    if window.client._server.returncode is None and (not record.samples or record.samples[-1]["t"] < deadline - 1):
        await sample(window, editor, record, seen)




async def drain(stream: asyncio.StreamReader, tail: list[str]) -> None:
    """Read the server's stderr (an undrained pipe would block it once full); keep the last lines."""
    while line := await stream.readline():
        tail.append(line.decode(errors="replace").rstrip())
        del tail[:-20]


# -- the run ---------------------------------------------------------------------------------


async def run_soak(minutes: float, seed: int = 11) -> dict:
    """The soak's figures (what ``bench soak --json`` prints)."""
    from benchmarks import tiny_model

    duration = minutes * MINUTE_S
    record = Record()
    stderr_tail: list[str] = []
    with tempfile.TemporaryDirectory(prefix="code-llama-ls-soak-") as tmp:
        root = Path(tmp).resolve()
        build_workspace(root)
        window = Window({"model": str(tiny_model.trained_model()), **SERVER_OPTIONS, **SOAK_BOUNDS},
                        root_uri=root.as_uri())
        window.client.feature("codeLlama/partialResult")(lambda params: None)  # explain's stream: not shown
        try:
            if (await window.start())["state"] != "ready":
                raise SystemExit(f"bench soak: the server could not load the model: {window.status}")
            draining = asyncio.ensure_future(drain(window.client._server.stderr, stderr_tail))
            editor = await warmed_up_editor(window, root, random.Random(seed), record)
            await asyncio.gather(editor.run(duration), sampler(window, editor, record, duration))
        finally:
            await window.stop()
        await asyncio.wait([draining], timeout=5)
    return report(record, duration, stderr_tail)


async def warmed_up_editor(window: Window, root: Path, rng: random.Random, record: Record) -> Editor:
    """The editor with its files open, after one completion (the runtime's caches exist from then
    on); the clock starts here."""
    editor = Editor(window, root, rng, record, time.monotonic())
    for _ in range(OPEN_FILES):
        editor.open_new()
    await asyncio.wait([editor.complete(editor.files[0], 3, 0, automatic=False)], timeout=REQUEST_TIMEOUT_S)
    record.requests.clear()
    editor.started = time.monotonic()
    return editor


def report(record: Record, duration: float, stderr_tail: list[str]) -> dict:
    count = max(1, int(-(-duration // MINUTE_S)))
    minutes = [minute_report(m, record) for m in range(count)]
    return {"minutes": minutes, "verdict": verdict(minutes, record), "bounds": SOAK_BOUNDS,
            "errors": [f"{t:.1f} s: {message}" for t, message in record.errors[:20]],
            "server_stderr_tail": stderr_tail if record.errors else []}


def minute_report(m: int, record: Record) -> dict:
    start, end = m * MINUTE_S, (m + 1) * MINUTE_S
    requests = [r for r in record.requests if start <= r.sent < end]
    served = [r for r in requests if r.outcome == "served"]
    samples = [s for s in record.samples if start < s["t"] <= end + 1] or record.samples[-1:]
    caches = {name: {"max": max(s["caches"][name]["peak"] for s in samples if name in s["caches"]),
                     "bound": samples[-1]["caches"][name]["bound"], "unit": samples[-1]["caches"][name]["unit"]}
              for name in samples[-1]["caches"]} if samples else {}
    return {"minute": m + 1, "served": len(served), "cancelled": sum(r.outcome == "cancelled" for r in requests),
            "errors": sum(start <= t < end for t, _ in record.errors),
            "completion": p50_p95([r.latency_ms for r in served if r.kind == "completion"]),
            "explain": p50_p95([r.latency_ms for r in served if r.kind == "explain"]),
            "caches": caches, "within_bounds": all(_within(s) for s in samples),
            "rss_mib": round(samples[-1]["memory"]["rssBytes"] / 2**20, 1) if samples else None,
            "python_blocks": samples[-1]["memory"]["pythonBlocks"] if samples else None}


def _within(sample: dict) -> bool:
    return all(c["peak"] <= c["bound"] for c in sample["caches"].values())


def verdict(minutes: list[dict], record: Record) -> dict:
    full_at = next((m["minute"] for m in minutes if _all_filled(minutes[:m["minute"]])), None)
    p95 = [m["completion"]["p95_ms"] for m in minutes]
    ratio = round(p95[-1] / p95[1], 3) if len(minutes) >= 3 and p95[1] > 0 else None
    growth = None
    if full_at is not None and full_at < len(minutes):
        base = minutes[full_at - 1]["rss_mib"]
        growth = round((minutes[-1]["rss_mib"] - base) / base, 4)
    return {"errors": len(record.errors), "within_bounds": all(m["within_bounds"] for m in minutes),
            "all_filled_by_minute": full_at, "unfilled": sorted(_unfilled(minutes)),
            "p95_last_over_minute_2": ratio, "p95_target_met": None if ratio is None else ratio <= P95_RATIO_TARGET,
            "rss_growth_from_full": growth,
            "rss_target_met": None if growth is None else growth < RSS_GROWTH_TARGET,
            "python_blocks_measure": "sys.getallocatedblocks() in the server"}


def _unfilled(minutes: list[dict]) -> set[str]:
    """Caches whose largest size so far stayed under FULL_SHARE of their bound."""
    reached: dict[str, float] = {}
    for minute in minutes:
        for name, cache in minute["caches"].items():
            share = cache["max"] / cache["bound"] if cache["bound"] else 1.0
            reached[name] = max(reached.get(name, 0.0), share)
    return {name for name, share in reached.items() if share < FULL_SHARE}


def _all_filled(minutes: list[dict]) -> bool:
    return bool(minutes) and bool(minutes[-1]["caches"]) and not _unfilled(minutes)


# -- command line ----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=20.0,
                        help=f"how long the editor types, up to {MAX_MINUTES:g} (fractions too; default: %(default)s)")
    parser.add_argument("--seed", type=int, default=11, help="the editor script's seed (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="one JSON object")


def main(args: argparse.Namespace) -> int:
    if not 0 < args.minutes <= MAX_MINUTES:
        print(f"bench soak: --minutes must be in (0, {MAX_MINUTES:g}]", file=sys.stderr)
        return 2
    result = asyncio.run(run_soak(args.minutes, args.seed))
    print(json.dumps(result) if args.json else "\n".join(text_lines(result)))
    v = result["verdict"]
    ok = not v["errors"] and v["within_bounds"] and not v["unfilled"] and v["p95_target_met"] is not False \
        and v["rss_target_met"] is not False
    return 0 if ok else 1


def text_lines(result: dict) -> list[str]:
    lines = []
    for m in result["minutes"]:
        c = m["completion"]
        lines.append(f"minute {m['minute']}: {m['served']} served, {m['cancelled']} cancelled, {m['errors']} errors; "
                     f"completion p50 {c['p50_ms']:.1f} ms p95 {c['p95_ms']:.1f} ms; explain p95 "
                     f"{m['explain']['p95_ms']:.1f} ms; RSS {m['rss_mib']} MiB, Python blocks {m['python_blocks']}")
        lines.append("  caches (largest size/bound): " + ", ".join(
            f"{name} {_amount(cache['max'], cache['unit'])}/{_amount(cache['bound'], cache['unit'])}"
            for name, cache in sorted(m["caches"].items())))
    lines.extend(f"  error: {e}" for e in result["errors"])
    lines.extend(f"  server stderr: {line}" for line in result["server_stderr_tail"])
    lines.append(verdict_line(result["verdict"]))
    return lines


def _amount(value: int, unit: str) -> str:
    return f"{value / 1024:.0f} KiB" if unit == "bytes" else f"{value:,}"


def verdict_line(v: dict) -> str:
    ratio = "n/a (needs 3 minutes)" if v["p95_last_over_minute_2"] is None else \
        f"{v['p95_last_over_minute_2']:.2f}× (target ≤ {P95_RATIO_TARGET}×: {'met' if v['p95_target_met'] else 'MISSED'})"
    growth = "n/a (no minute after all caches filled)" if v["rss_growth_from_full"] is None else \
        f"{v['rss_growth_from_full']:+.1%} (target < {RSS_GROWTH_TARGET:.0%}: {'met' if v['rss_target_met'] else 'MISSED'})"
    filled = f"all filled by minute {v['all_filled_by_minute']}" if v["all_filled_by_minute"] else \
        f"NOT all filled (under {FULL_SHARE:.0%} of bound: {', '.join(v['unfilled'])})"
    return (f"verdict: {v['errors']} errors; caches within bounds: {'yes' if v['within_bounds'] else 'NO'}, {filled}; "
            f"p95 last minute / minute 2: {ratio}; RSS growth from the full minute to the end: {growth}")
