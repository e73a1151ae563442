"""``code-llama-ls bench replay``: a typing trace replayed through the language server.

Trace: the first (``def``) lines of standard-library functions, each retyped character by
character into its own module (the line's text removed, its indentation kept), with inter-key
gaps from a fixed, seeded distribution: 80-150 ms inside a word, a 300-600 ms pause after the
last character of a word or line. A *shown state* is a keystroke followed by a pause ≥ 300 ms.

Ours: the real server (``python -m code_llama_ls --stdio``) driven over pygls' client in real
time, as an editor does it: ``didChange`` per keystroke, the previous unanswered
``inlineCompletion`` cancelled (``$/cancelRequest``), a new automatic ``inlineCompletion``.
Model seconds, cache hits and which model call served each answer come from the server's
``codeLlama/engineStats``.

Naive: for every request (every keystroke) the same prompt ids built from scratch, a fresh KV
cache, full greedy generation to ``maxNewTokens`` or ``▁<EOT>``, no completion cache, no
cancellation — timed offline in this process with the same decoding loop (prefix reuse off).
Its suggestions at shown states are compared with what ours showed (a shown state whose answer
had not arrived when the next keystroke superseded it showed nothing; those are counted as
``shown_superseded`` and left out of the comparison and of the latency percentiles). Both pipelines apply the
same token healing (it changes what the model sees, not how much it costs); how many shown
states were healed is reported. On the mid model, naive time is measured on every shown state
and on a sample of the other requests; the rest are priced at the sampled mean (reported).

Seconds depend on the machine and on what else runs on it: the naive side is timed offline at
another moment than ours, and a slower model gets more of ours' generations superseded. So model
work is also counted in *evaluated tokens* (prompt tokens run through the model, i.e. not served
from a reused KV prefix, plus decode steps and drafted tokens; every backend's last chunk reports
them) per shown state, and ``token_ratio`` (naive / ours) means the same on any machine. The
1-minute load average at the start and end of each phase, and its highest value during it, is
printed beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sysconfig
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from code_llama_ls.bench.stats import percentile

MODULES = ("textwrap.py", "shlex.py", "fnmatch.py", "glob.py", "bisect.py", "heapq.py", "colorsys.py",
           "copy.py", "keyword.py", "linecache.py", "ntpath.py", "posixpath.py", "string.py", "tokenize.py",
           "base64.py", "calendar.py", "difflib.py", "genericpath.py", "operator.py", "queue.py")
MAX_KEYSTROKES = 600
CONTEXT_TOKENS = 2048
MAX_NEW_TOKENS = 48
_DEF = re.compile(r"^([ \t]*)(def [A-Za-z_]\w*\(.*\):)[ \t]*$")


@dataclass
class Function:
    module: str
    text: str  # the module's source
    start: int  # offset of the def line's text (after its indentation)
    line: str  # the def line's text (what is typed)


@dataclass
class Keystroke:
    function: int
    index: int  # characters of the line typed after this keystroke
    at: float  # seconds from the start of the trace
    shown: bool  # followed by a pause >= 300 ms


@dataclass
class Trace:
    functions: list[Function]
    keystrokes: list[Keystroke] = field(default_factory=list)


def build_trace(functions: int, max_chars: int, seed: int = 7) -> Trace:
    """The first def lines of ``functions`` functions (one per module in turn, lines of at most
    ``max_chars`` characters), and the keystroke times."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    candidates: list[list[Function]] = []
    for name in MODULES:
        path = stdlib / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        found, offset = [], 0
        for raw in text.splitlines(keepends=True):
            match = _DEF.match(raw.rstrip("\r\n"))
            if match and len(match.group(2)) <= max_chars and offset > 2000:
                found.append(Function(name, text, offset + len(match.group(1)), match.group(2)))
            offset += len(raw)
        if found:
            candidates.append(found)
    chosen: list[Function] = []
    round_ = 0
    while len(chosen) < functions and any(len(c) > round_ for c in candidates):
        for found in candidates:
            if len(found) > round_ and len(chosen) < functions:
                chosen.append(found[(round_ * 7) % len(found)] if round_ else found[len(found) // 2])
        round_ += 1
    rng = random.Random(seed)
    trace = Trace(chosen)
    now = 0.5
    for f, function in enumerate(chosen):
        for i, ch in enumerate(function.line):
            if len(trace.keystrokes) >= MAX_KEYSTROKES:
                return trace
            nxt = function.line[i + 1] if i + 1 < len(function.line) else ""
            word_end = (ch.isalnum() or ch == "_") and not (nxt.isalnum() or nxt == "_")
            pause = word_end or not nxt
            trace.keystrokes.append(Keystroke(f, i + 1, now, pause))
            now += rng.uniform(0.3, 0.6) if pause else rng.uniform(0.08, 0.15)
    return trace


def state_text(function: Function, typed: int) -> tuple[str, int]:
    """The document after ``typed`` characters of the line, and the cursor offset."""
    end = function.text.index("\n", function.start)
    text = function.text[:function.start] + function.line[:typed] + function.text[end:]
    return text, function.start + typed


# -- ours: the real server over stdio --------------------------------------------------------


async def replay_ours(model_dir: Path, trace: Trace, extra: dict) -> dict:
    from code_llama_ls.bench.lsp_window import Window

    options = {"model": str(model_dir), "localFilesOnly": True, "maxNewTokens": MAX_NEW_TOKENS,
               "maxContextTokens": CONTEXT_TOKENS, "contextEnabled": False, "device": "cpu", **extra}
    window = Window(options)
    try:
        if (await window.start(120))["state"] != "ready":
            raise SystemExit(f"bench replay: the server could not load {model_dir}")
        return await drive(window.client, trace)
    finally:
        await window.stop()


async def drive(client, trace: Trace) -> dict:
    from lsprotocol import types

    # Warm-up outside the trace (first-call costs: allocator, vocabulary pieces).
    warm_uri = "file:///bench/warmup.py"
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=warm_uri, language_id="python", version=1, text="def f(x):\n    return x\n")))
    await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=warm_uri), position=types.Position(line=1, character=4),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))

    results: dict[int, dict] = {}
    pending: tuple[int, asyncio.Future] | None = None
    shown_futures: list[asyncio.Future] = []
    started = time.perf_counter()
    current_function, version, uri, line_no = -1, 0, "", 0
    for k, key in enumerate(trace.keystrokes):
        function = trace.functions[key.function]
        delay = key.at - (time.perf_counter() - started)
        if delay > 0:
            await asyncio.sleep(delay)
        if key.function != current_function:
            current_function = key.function
            uri = f"file:///bench/{key.function:02d}/{function.module}"
            text, _ = state_text(function, 0)
            line_no = text.count("\n", 0, function.start)
            version = 1
            client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=version, text=text)))
        column = function.start - (function.text.rfind("\n", 0, function.start) + 1) + key.index - 1
        version += 1
        sent = time.perf_counter()
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(line=line_no, character=column),
                                  end=types.Position(line=line_no, character=column)),
                text=function.line[key.index - 1])]))
        if pending is not None and not pending[1].done() and not trace.keystrokes[k - 1].shown:
            # The editor gives up on a suggestion the user typed past; a shown state's answer
            # is awaited (shown when it arrives) so that its latency is measured.
            client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=pending[0]))
        request_id = f"r{k}"
        future = asyncio.wrap_future(client.protocol.send_request(
            types.TEXT_DOCUMENT_INLINE_COMPLETION,
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=line_no, character=column + 1),
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic)),
            msg_id=request_id))
        record = {"uri": uri, "version": version, "sent": sent}
        results[k] = record

        def done(fut: asyncio.Future, record=record) -> None:
            record["latency_ms"] = (time.perf_counter() - record["sent"]) * 1000
            if fut.cancelled() or fut.exception() is not None:
                record["answer"] = "cancelled"
            else:
                items = fut.result().items
                record["answer"] = items[0].insert_text if items else None

        future.add_done_callback(done)
        pending = (request_id, future)
        if key.shown:
            shown_futures.append(future)
    if shown_futures:
        await asyncio.wait(shown_futures, timeout=120)
    await asyncio.sleep(0.2)
    stats = await client.protocol.send_request_async("codeLlama/engineStats", {})
    events = stats["events"] if isinstance(stats, dict) else stats.events
    events = [_plain(e) for e in events]
    return {"results": results, "events": events}


def _plain(value):
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# -- naive: every request from scratch, offline -------------------------------------------------


class Naive:
    def __init__(self, model_dir: Path, token_healing: bool = True) -> None:
        import torch

        from code_llama_ls.backends.transformers_backend import TransformersBackend
        from code_llama_ls.prompts.tokenization import ModelTokenizer
        from code_llama_ls.settings import Settings

        self.tokenizer = ModelTokenizer.from_file(Path(model_dir) / "tokenizer.json")
        self.backend = TransformersBackend(str(model_dir), self.tokenizer, device="cpu", dtype="float32",
                                           local_files_only=True)
        self.backend._load_blocking(lambda message, pct: None)
        torch.set_num_threads(torch.get_num_threads())
        self.settings = Settings(model=str(model_dir), local_files_only=True, max_new_tokens=MAX_NEW_TOKENS,
                                 max_context_tokens=CONTEXT_TOKENS, context_enabled=False, device="cpu",
                                 token_healing=token_healing)

    def run(self, text: str, offset: int) -> tuple[float, str | None, bool, int]:
        """Model seconds, the suggestion shown, whether the prompt was healed, and the tokens
        the model evaluated (the whole prompt, then its decode steps)."""
        from code_llama_ls.backends.base import CancelToken, GenerationRequest
        from code_llama_ls.completion.cache import heal, piece_texts
        from code_llama_ls.completion.engine import build_prompt
        from code_llama_ls.completion.postprocess import CursorContext, postprocess
        from code_llama_ls.context.syntax import completion_scope
        from code_llama_ls.documents import Document

        document = Document("file:///bench/naive.py", text, 1, "python")
        scope = completion_scope(document, offset)
        cursor = CursorContext.at(document, offset, scope)
        prompt = build_prompt(document, offset, self.tokenizer, self.settings, "cpu", None, automatic=True)
        ids, heal_text = heal(prompt, piece_texts(self.tokenizer)) if self.settings.token_healing \
            else (prompt.ids, "")
        request = GenerationRequest(ids, MAX_NEW_TOKENS, 0.0, self.tokenizer.stop_ids(), heal_text=heal_text,
                                    kv_cache_bytes=0)
        final = self.backend._decode_loop(request, CancelToken(), lambda chunk: None)
        raw = self.tokenizer.decode_infilling(final.ids or [])
        raw = raw[len(heal_text):] if raw.startswith(heal_text) else ""
        suggestion = postprocess(raw, cursor)
        return (final.seconds, (suggestion.text if suggestion is not None else None), bool(heal_text),
                final.evaluated_tokens)


def evaluate(model_dir: Path, trace: Trace, ours: dict, sample_every: int, token_healing: bool = True) -> dict:
    naive = Naive(model_dir, token_healing)
    naive.run(*state_text(trace.functions[0], 1))  # warm-up
    results, events = ours["results"], ours["events"]
    shown = [k for k, key in enumerate(trace.keystrokes) if key.shown]
    answers = {(e["uri"], e["version"]): e for e in events if e["kind"] == "answer"}
    generations = {e["id"]: e for e in events if e["kind"] == "generation"}
    measured: dict[int, float] = {}
    measured_tokens: dict[int, int] = {}
    identical, mismatches, healed = 0, [], 0
    for k, key in enumerate(trace.keystrokes):
        if not key.shown and k % sample_every:
            continue
        seconds, text, was_healed, tokens = naive.run(*state_text(trace.functions[key.function], key.index))
        measured[k], measured_tokens[k] = seconds, tokens
        if key.shown:
            healed += was_healed
            got = results[k].get("answer")
            if got == "cancelled":  # superseded by the next keystroke: ours showed nothing here
                continue
            if got == text or (got is None and text is None):
                identical += 1
            else:
                mismatches.append({"keystroke": k, "ours": got, "naive": text})
    mean = sum(measured.values()) / len(measured)
    naive_total = sum(measured.values()) + mean * (len(trace.keystrokes) - len(measured))
    mean_tokens = sum(measured_tokens.values()) / len(measured_tokens)
    naive_tokens = sum(measured_tokens.values()) + mean_tokens * (len(trace.keystrokes) - len(measured_tokens))
    ours_tokens = sum(g["evaluatedTokens"] for g in generations.values())

    ours_total = sum(g["modelS"] for g in generations.values())
    shown_answers = [answers.get((results[k]["uri"], results[k]["version"])) for k in shown]
    shown_ids = {a["generationId"] for a in shown_answers if a is not None}
    wasted = sum(g["modelS"] for i, g in generations.items() if i not in shown_ids)
    hits = sum(1 for a in shown_answers if a is not None and a["fromCache"])
    answered = [k for k in shown if results[k].get("answer", "cancelled") != "cancelled"]
    latencies = [results[k]["latency_ms"] for k in answered]
    overhead = [e["overheadMs"] for e in events if e["kind"] == "answer"]
    stages = {stage: round(percentile([e["timingsMs"][stage] for e in events if e["kind"] == "answer"], 0.95), 2)
              for stage in ("prompt", "lookup", "postprocess")}
    n = len(shown)
    return {
        "keystrokes": len(trace.keystrokes),
        "functions": len(trace.functions),
        "shown_states": n,
        "naive_model_s_per_shown": round(naive_total / n, 4),
        "ours_model_s_per_shown": round(ours_total / n, 4),
        "ratio": round(naive_total / ours_total, 2) if ours_total else None,
        "naive_tokens_per_shown": round(naive_tokens / n, 1),
        "ours_tokens_per_shown": round(ours_tokens / n, 1),
        "token_ratio": round(naive_tokens / ours_tokens, 2) if ours_tokens else None,
        "naive_evaluated_tokens": round(naive_tokens),
        "ours_evaluated_tokens": ours_tokens,
        "p50_ms": round(percentile(latencies, 0.5), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "cache_hit_rate": round(hits / n, 3),
        "wasted_share": round(wasted / ours_total, 3) if ours_total else 0.0,
        "greedy_outputs_identical": not mismatches,
        "identical_shown_states": identical,
        "mismatches": mismatches[:5],
        "overhead_p50_ms": round(percentile(overhead, 0.5), 2),
        "overhead_p95_ms": round(percentile(overhead, 0.95), 2),
        "overhead_stage_p95_ms": stages,
        "healed_shown_states": healed,
        "model_calls": len(generations),
        "shown_answered": len(answered),
        "shown_superseded": n - len(answered),
        "naive_requests": len(trace.keystrokes),
        "naive_measured_requests": len(measured),
        "naive_s_per_request_mean": round(mean, 4),
        "naive_tokens_per_request_mean": round(mean_tokens, 1),
        "reused_prompt_tokens": sum(g["reusedTokens"] for g in generations.values()),
        "prompt_tokens": sum(g["promptTokens"] for g in generations.values()),
    }


class LoadSampler:
    """The 1-minute load average at a phase's start and end and its highest value between
    (sampled every 2 s): how busy the machine was while that phase's seconds were measured."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(2.0):
                return

    def __enter__(self) -> "LoadSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def figures(self) -> dict[str, float]:
        return {"start": round(self.samples[0], 2), "end": round(self.samples[-1], 2),
                "max": round(max(self.samples), 2)}


def run(smoke: bool, models: list[str], extra: dict) -> dict:
    from code_llama_ls.bench import tiny_model

    trace = build_trace(2 if smoke else 24, 26)
    if smoke:
        trace.keystrokes = trace.keystrokes[:16]
    builders = {"tiny": tiny_model.trained_model, "mid": tiny_model.mid_model}
    out: dict = {"models": {}, "trace": {"keystrokes": len(trace.keystrokes), "functions": len(trace.functions),
                                         "duration_s": round(trace.keystrokes[-1].at, 1),
                                         "shown_states": sum(k.shown for k in trace.keystrokes)}}
    for name in models:
        folder = builders[name]()
        began = time.perf_counter()
        with LoadSampler() as ours_load:
            ours = asyncio.run(replay_ours(folder, trace, extra))
        replayed = time.perf_counter() - began
        with LoadSampler() as naive_load:
            result = evaluate(folder, trace, ours, 1 if name == "tiny" else 6,
                              extra.get("tokenHealing", True))
        result["bench_seconds"] = {"replay": round(replayed, 1), "naive": round(time.perf_counter() - began - replayed, 1)}
        result["load_average_1min"] = {"ours": ours_load.figures(), "naive": naive_load.figures()}
        out["models"][name] = result
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="a 16-keystroke trace (CI, under a minute)")
    parser.add_argument("--models", default="tiny,mid", help="comma-separated: tiny, mid")
    parser.add_argument("--prompt-lookup", type=int, default=None, help="promptLookupTokens for ours")
    parser.add_argument("--no-token-healing", action="store_true")
    parser.add_argument("--debounce-ms", type=int, default=None, help="debounceMs for ours (default: the setting's)")


def main(args: argparse.Namespace) -> int:
    extra: dict = {}
    if args.prompt_lookup is not None:
        extra["promptLookupTokens"] = args.prompt_lookup
    if args.no_token_healing:
        extra["tokenHealing"] = False
    if args.debounce_ms is not None:
        extra["debounceMs"] = args.debounce_ms
    result = run(args.smoke, [m for m in args.models.split(",") if m], extra)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"trace: {result['trace']}")
    keys = ("naive_tokens_per_shown", "ours_tokens_per_shown", "token_ratio",
            "naive_model_s_per_shown", "ours_model_s_per_shown", "ratio", "p50_ms", "p95_ms", "cache_hit_rate",
            "wasted_share", "greedy_outputs_identical", "overhead_p95_ms", "healed_shown_states", "model_calls")
    for name, figures in result["models"].items():
        print(f"{name}: " + ", ".join(f"{k}={figures[k]}" for k in keys))
        load = figures["load_average_1min"]
        print(f"{name}: machine load (1-min average, start→end, max): " + "; ".join(
            f"{phase} {v['start']}→{v['end']}, max {v['max']}" for phase, v in load.items()))
    return 0
