"""Issue 12, "First contact": the real ``code-llama-ls`` command on the inputs a first user gives it.

Lines and ranges are checked in one way for every command; failures are one line with a
documented exit status; CRLF files stay CRLF; skipped files, an unreachable hub and an empty
suggestion say why; the server ends at once on Ctrl-C and on exit, over stdio and TCP.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backends"))  # the loopback OpenAI server

from loopback import LoopbackServer, answering  # noqa: E402

from benchmarks.tiny_model import INSTRUCT_EXAMPLES, INSTRUCT_SOURCE  # noqa: E402
from code_llama_ls.exits import EXIT_INPUT, EXIT_MODEL, EXIT_NOTHING, EXIT_STATUS_HELP, EXIT_USAGE  # noqa: E402
from code_llama_ls.completion import postprocess  # noqa: E402
from code_llama_ls.documents import MAX_DOCUMENT_CHARS  # noqa: E402
from code_llama_ls.runtime.hub import PROBE_TIMEOUT_S  # noqa: E402
from code_llama_ls.lifetime import INTERRUPTED  # noqa: E402
from code_llama_ls.settings import DEFAULT_MODEL  # noqa: E402

WAIT = 120
BARE_LF = re.compile(r"(?<!\r)\n")
TWO_FUNCTIONS = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"
DOCSTRING = next(ex for ex in INSTRUCT_EXAMPLES if ex.kind == "docstring")


def cli() -> list[str]:
    found = shutil.which("code-llama-ls")
    return [found] if found else [sys.executable, "-m", "code_llama_ls"]


def run(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*cli(), *args], capture_output=True, text=True, timeout=WAIT, env=env, cwd=cwd)


def one_line(done: subprocess.CompletedProcess) -> str:
    """The failure's only stderr line (after the model's loading lines, if any)."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if not line.startswith(("Code Llama: loading", "loading "))]
    assert len(lines) == 1 and lines[0].startswith("code-llama-ls: "), done.stderr
    return lines[0].removeprefix("code-llama-ls: ")


@pytest.fixture
def model(trained_model) -> list[str]:
    return ["--model", str(trained_model), "--local-files-only"]


# -- 1. lines and ranges ---------------------------------------------------------------------------


@pytest.mark.parametrize("where", [["complete", "--line", "999", "--character", "0"],
                                   ["prompt", "--line", "999", "--character", "0"],
                                   ["explain", "--range", "999:0-999:1"],
                                   ["docstring", "--line", "999"]])
def test_a_line_past_the_end_names_the_lines_there_are(tmp_path, model, where):
    source = tmp_path / "add.py"
    source.write_text(TWO_FUNCTIONS)
    done = run(where[0], str(source), *where[1:], *model)
    assert done.returncode == EXIT_USAGE
    assert one_line(done) == f"line 999 is past the end of {source} (lines 0–{TWO_FUNCTIONS.count(chr(10))})"


def test_a_negative_line_is_refused_not_counted_from_the_end(tmp_path, model):
    source = tmp_path / "add.py"
    source.write_text(TWO_FUNCTIONS)
    done = run("docstring", str(source), "--line", "-3", "--apply", *model)
    assert done.returncode == EXIT_USAGE and one_line(done).startswith("line -3 is negative")
    assert source.read_text() == TWO_FUNCTIONS


def test_a_character_past_its_line_and_a_reversed_range_are_named(tmp_path, model):
    source = tmp_path / "add.py"
    source.write_text(TWO_FUNCTIONS)
    past = run("complete", str(source), "--line", "1", "--character", "40", *model)
    assert past.returncode == EXIT_USAGE
    assert one_line(past) == f"character 40 is outside line 1 of {source} (characters 0–16)"
    reversed_ = run("explain", str(source), "--range", "4:0-1:0", *model)
    assert reversed_.returncode == EXIT_USAGE
    assert "is reversed" in one_line(reversed_) and "no code" not in reversed_.stderr
    empty = run("explain", str(source), "--range", "1:0-1:0", *model)
    assert empty.returncode == EXIT_USAGE and one_line(empty) == f"--range 1:0-1:0 of {source} holds no code to explain"


def test_a_line_without_a_definition_is_named_in_shell_words(tmp_path, model):
    source = tmp_path / "add.py"
    source.write_text("import os\n\n" + TWO_FUNCTIONS)
    done = run("docstring", str(source), "--line", "0", *model)
    assert done.returncode == EXIT_USAGE
    assert one_line(done) == f"no function, method or class at line 0 of {source}"


# -- 2. line breaks --------------------------------------------------------------------------------


def test_docstring_and_tests_apply_keep_crlf_files_crlf(tmp_path, trained_model, tokenizer_dir):
    async def scenario():
        server = LoopbackServer(answering([DOCSTRING.answer]))
        await server.start()
        try:
            source = tmp_path / "add.py"
            source.write_bytes(INSTRUCT_SOURCE.replace("\n", "\r\n").encode())
            code, _, err = await cli_async("docstring", str(source), "--line", "0", "--apply", "--model", "m",
                                           "--tokenizer", str(tokenizer_dir), "--backend", "openai", "--url", server.url)
            return code, err, source.read_bytes().decode()
        finally:
            await server.stop()

    code, err, documented = asyncio.run(scenario())
    assert code == 0, err
    assert f'    """{DOCSTRING.answer}"""\r\n' in documented and not BARE_LF.search(documented), repr(documented)

    source = tmp_path / "add.py"
    source.write_text(INSTRUCT_SOURCE)  # the prompt the trained model knows
    existing = tmp_path / "tests" / "test_add.py"
    existing.parent.mkdir()
    existing.write_bytes(b"import pytest\r\n\r\n\r\ndef test_old():\r\n    assert True\r\n")
    done = run("tests", str(source), "--symbol", "add", "--apply", "--model", str(trained_model), "--local-files-only")
    assert done.returncode == 0, done.stderr
    extended = existing.read_bytes().decode()
    assert "def test_add():\r\n" in extended and not BARE_LF.search(extended), repr(extended)


# -- 3. files the model never sees, and the exit statuses --------------------------------------------


def skipped_files(root: Path) -> dict[str, Path]:
    (root / ".git").mkdir()
    (root / ".gitignore").write_text("generated/\n")
    (root / "generated").mkdir()
    files = {"secret": root / ".env", "ignored": root / "generated" / "out.py", "too large": root / "big.py"}
    files["secret"].write_text("API_KEY=abc\n")
    files["ignored"].write_text("x = 1\n")
    files["too large"].write_text("x = 1\n" * (MAX_DOCUMENT_CHARS // 6 + 1))
    return files


@pytest.mark.parametrize("command", [["complete", "--line", "0", "--character", "0"],
                                     ["prompt", "--line", "0", "--character", "0"],
                                     ["explain", "--range", "0:0-0:5"]])
def test_files_kept_from_the_model_end_in_one_clean_line(tmp_path, model, command):
    for kind, path in skipped_files(tmp_path).items():
        if kind == "too large" and command[0] == "explain":
            continue  # an explanation reads only the range
        done = run(command[0], str(path), *command[1:], *model)
        assert done.returncode == EXIT_INPUT, (kind, done.stderr)
        assert path.name in one_line(done) and "file://" not in done.stderr, (kind, done.stderr)


def test_a_missing_or_binary_file_is_named_without_the_raw_error(tmp_path, model):
    missing = tmp_path / "add.py"
    done = run("explain", str(missing), "--range", "0:0-0:1", *model)
    assert done.returncode == EXIT_INPUT and one_line(done) == f"{missing}: no such file"
    binary = tmp_path / "blob.py"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    done = run("explain", str(binary), "--range", "0:0-0:1", *model)
    assert done.returncode == EXIT_INPUT and one_line(done).startswith(f"{binary} is not a UTF-8 text file")


@pytest.mark.parametrize("command", [[], ["complete"], ["prompt"], ["explain"], ["docstring"], ["tests"]])
def test_every_help_lists_the_exit_statuses(command):
    done = run(*command, "--help")
    assert done.returncode == 0 and EXIT_STATUS_HELP in done.stdout


# -- 4. the server ends at once ----------------------------------------------------------------------


def frame(**message) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", **message}).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def initialize(model_dir: Path) -> bytes:
    return frame(id=1, method="initialize", params={"processId": None, "rootUri": None, "capabilities": {},
                                                    "initializationOptions": {"model": str(model_dir),
                                                                              "localFilesOnly": True}})


def read_message(stream) -> dict:
    length = None
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("ascii").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return json.loads(stream.read(length))


def read_response(stream, id_: int) -> dict:
    while (message := read_message(stream)).get("id") != id_ or "method" in message:
        pass
    return message


@contextmanager
def watched(process: subprocess.Popen):
    """Kill the server if the test still waits on it after WAIT seconds (its reads block), and at the end."""
    timer = threading.Timer(WAIT, process.kill)
    timer.start()
    try:
        yield process
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()


def ended_quietly(process: subprocess.Popen, stderr_path: Path, within: float = 5.0) -> int:
    """The process's exit status, which must come ``within`` seconds; stderr holds no traceback."""
    try:
        status = process.wait(timeout=within)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {within} s later; stderr:\n{stderr_path.read_text()[-3000:]}")
    stderr = stderr_path.read_text()
    assert "Traceback" not in stderr and "SystemExit" not in stderr, stderr[-3000:]
    return status


def test_stdio_ends_on_ctrl_c_while_the_model_loads(tmp_path, trained_model):
    stderr = tmp_path / "stderr"
    with stderr.open("w") as err:
        server = subprocess.Popen([*cli(), "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
    with watched(server):
        server.stdin.write(initialize(trained_model))
        server.stdin.flush()
        assert "capabilities" in read_response(server.stdout, 1)["result"]
        server.stdin.write(frame(method="initialized", params={}))  # the load starts in worker threads
        server.stdin.flush()
        server.send_signal(signal.SIGINT)  # stdin stays open: pygls' reader is blocked on it
        assert ended_quietly(server, stderr) == INTERRUPTED


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_server(tmp_path: Path):
    port, stderr = free_port(), tmp_path / "stderr"
    with stderr.open("w") as err:
        process = subprocess.Popen([*cli(), "--tcp", "--port", str(port)], stdin=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + WAIT
    while True:
        try:
            return process, stderr, socket.create_connection(("127.0.0.1", port))
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, stderr.read_text()
            time.sleep(0.2)


@pytest.mark.parametrize("ending", ["shutdown and exit", "ctrl-c"])
def test_tcp_ends_quietly_after_exit_and_on_ctrl_c(tmp_path, trained_model, ending):
    process, stderr, connection = tcp_server(tmp_path)
    connection.settimeout(WAIT)
    with watched(process), connection, connection.makefile("rb") as stream:
        connection.sendall(initialize(trained_model))
        assert "capabilities" in read_response(stream, 1)["result"]
        connection.sendall(frame(method="initialized", params={}))  # the load starts in worker threads
        if ending == "ctrl-c":
            process.send_signal(signal.SIGINT)
            assert ended_quietly(process, stderr) == INTERRUPTED
            return
        connection.sendall(frame(id=2, method="shutdown"))
        assert "error" not in read_response(stream, 2)
        connection.sendall(frame(method="exit"))
        assert ended_quietly(process, stderr) == 0


# -- 5. no network ---------------------------------------------------------------------------------


def offline_env(tmp_path: Path) -> dict[str, str]:
    """An empty Hugging Face cache and a hub endpoint on a loopback port nothing listens on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    return {**env, "HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"}


def test_an_unreachable_hub_fails_in_seconds_and_says_what_to_do(tmp_path):
    source = tmp_path / "add.py"
    source.write_text(INSTRUCT_SOURCE)
    env = offline_env(tmp_path)
    started = time.monotonic()
    baseline = run("complete", str(source), "--line", "1", "--character", "0", "--model", str(tmp_path / "none"), env=env)
    no_hub = time.monotonic() - started  # the same command where nothing comes from the hub
    assert baseline.returncode == EXIT_MODEL
    started = time.monotonic()
    done = run("complete", str(source), "--line", "1", "--character", "0", env=env)  # the default model
    elapsed = time.monotonic() - started
    assert done.returncode == EXIT_MODEL and done.stdout == ""
    # 5 s as the issue asks; where starting the command alone takes seconds, at most the probe more
    assert elapsed < max(5.0, no_hub + PROBE_TIMEOUT_S + 1.0), (elapsed, no_hub)
    lines = done.stderr.strip().splitlines()
    assert len(lines) <= 3 and "Traceback" not in done.stderr, done.stderr
    assert "--model" in done.stderr and "--local-files-only" in done.stderr, done.stderr
    assert done.stderr.count(DEFAULT_MODEL) == 2, done.stderr  # "loading …" once, the error once


def test_the_server_shows_an_unreachable_hub_once(tmp_path):
    stderr = tmp_path / "stderr"
    with stderr.open("w") as err:
        server = subprocess.Popen([*cli(), "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                  env=offline_env(tmp_path))
    with watched(server):
        server.stdin.write(frame(id=1, method="initialize", params={"processId": None, "rootUri": None,
                                                                    "capabilities": {}}))
        server.stdin.write(frame(method="initialized", params={}))
        server.stdin.flush()
        shown = []
        while not any(m.get("method") == "codeLlama/status" and m["params"]["state"] == "error" for m in shown):
            shown.append(read_message(server.stdout))
        server.stdin.write(frame(id=2, method="shutdown"))
        server.stdin.flush()
        while (message := read_message(server.stdout)).get("id") != 2:
            shown.append(message)
        errors = [m["params"]["message"] for m in shown if m.get("method") == "window/showMessage"]
        assert len(errors) == 1 and "cannot reach the Hugging Face hub" in errors[0], errors


# -- 6. why nothing was suggested, and --log-level anywhere -------------------------------------------


async def cli_async(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(*cli(), *args, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), WAIT)
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("raw, reason", [
    ("", postprocess.WROTE_NOTHING),
    ("  \n ", postprocess.WROTE_WHITESPACE),
    ("\nreturn a", postprocess.FIRST_LINE_BLANK),
    ("return a + b", postprocess.ECHOED_LINE_SUFFIX),
])
async def test_verbose_says_why_there_is_no_suggestion(tmp_path, tokenizer_dir, raw, reason):
    server = LoopbackServer(answering([raw] if raw else []))
    await server.start()
    try:
        source = tmp_path / "add.py"
        source.write_text("def add(a, b):\n    return a + b\n")  # the cursor before "return a + b"
        common = [str(source), "--line", "1", "--character", "4", "--model", "m", "--tokenizer", str(tokenizer_dir),
                  "--backend", "openai", "--url", server.url]
        code, out, err = await cli_async("complete", *common, "--verbose")
        assert (code, out) == (EXIT_NOTHING, ""), err
        assert f"no suggestion: {reason} (the model stopped: " in err, err
        quiet = await cli_async("complete", *common)
        assert quiet[:2] == (EXIT_NOTHING, "") and reason not in quiet[2]
    finally:
        await server.stop()


@pytest.mark.parametrize("order", ["before", "after"])
def test_log_level_goes_before_or_after_the_subcommand(tmp_path, order):
    source = tmp_path / "add.py"
    source.write_text(INSTRUCT_SOURCE)
    command = ["complete", str(source), "--line", "0", "--character", "0", "--model", str(tmp_path / "none")]
    done = run(*(["--log-level", "info", *command] if order == "before" else [*command, "--log-level", "info"]))
    assert done.returncode == EXIT_MODEL, done.stderr
    assert "INFO code_llama_ls.runtime.manager: model load failed" in done.stderr, done.stderr


# -- 8. what the actions' default model is ----------------------------------------------------------


@pytest.mark.parametrize("command", ["explain", "docstring", "tests"])
def test_action_help_says_the_default_model_is_the_base_model(command):
    done = run(command, "--help")
    text = " ".join(done.stdout.split())
    assert "instruct model:" not in text
    assert f"the completion model: hub id or folder (default: {DEFAULT_MODEL})" in text
    assert "--instruct-model" in text and "a base model (not trained to follow instructions)" in text
