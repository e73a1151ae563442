"""docs/deploy.md, block by block: what a team lead copies from it must work.

- Every ```json block is a settings block: `{"codeLlama": {...}}` (or its contents); each key is
  one the VS Code extension forwards (a server setting contributed in its package.json), and
  the server's settings model takes every value without a warning.
- Every ```sh block is run, command by command: `export NAME=...` sets NAME for the commands
  after it (to a test value), and each `code-llama-ls ...` line runs as this interpreter's
  `python -m code_llama_ls ...` against loopback servers, with these substitutions:
    * `https://llm.internal`: a loopback HTTPS server (OpenAI-compatible, scripted) whose
      certificate a test CA signed; `/etc/ssl/certs/internal-ca.pem`: that CA;
    * `/run/user/1000/code-llama.sock`: a socket in a temporary folder;
    * hub ids (`codellama/...`): an offline Hugging Face cache (HF_HUB_CACHE, HF_HUB_OFFLINE=1)
      in which every such id holds the trained tiny model, tokenizer and weights;
    * `src/app.py`: a file of the test's own, in the folder the commands run in.
  `code-llama-ls model-server` is started, must answer /health and list the model, and is stopped.
- A block that needs what a test machine lacks (vLLM, TGI, nginx, Ollama, a GPU, the hub) has a
  `<!-- not run here: REASON -->` line right above it: it is reported as skipped with that reason.
  Any other block (a command neither run nor marked, another language) fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from code_llama_ls.cli.main import build_parser
from code_llama_ls.settings import Settings, merge_settings

REPO = Path(__file__).resolve().parents[2]
for helpers in ("backends", "remote"):
    sys.path.insert(0, str(REPO / "tests" / helpers))
sys.path.insert(0, str(REPO / "editors" / "vscode" / "scripts"))

from loopback import LoopbackServer, stream_completion  # noqa: E402
from remote_servers import start_process, stop_group, wait_healthy  # noqa: E402
from sync_settings import is_extension_setting  # noqa: E402

DOC = REPO / "docs" / "deploy.md"
PACKAGE_JSON = REPO / "editors" / "vscode" / "package.json"
NOT_RUN = re.compile(r"<!-- not run here: (.+?) -->")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
DOC_URL, DOC_CA, DOC_SOCKET = "https://llm.internal", "/etc/ssl/certs/internal-ca.pem", "/run/user/1000/code-llama.sock"
ANSWER = "return sum(item.price for item in self.items)"
"""What the scripted server streams for every completion request."""


@dataclass(frozen=True)
class Block:
    line: int
    language: str
    text: str
    not_run: str | None  # the reason its marker gives

    def __str__(self) -> str:
        return f"deploy.md:{self.line}:{self.language}"


def doc_blocks() -> list[Block]:
    text = DOC.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        above = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = NOT_RUN.fullmatch(above.strip())
        blocks.append(Block(text.count("\n", 0, match.start()) + 1, match.group(1), match.group(2),
                            marker.group(1) if marker else None))
    return blocks


def shell_commands(script: str) -> list[list[str]]:
    """The block's commands as argv lists: continuation lines joined, comments dropped."""
    return [argv for line in script.replace("\\\n", " ").splitlines() if (argv := shlex.split(line, comments=True))]


BLOCKS = doc_blocks()
SETTINGS_BLOCKS = [block for block in BLOCKS if block.language == "json"]
RUN_BLOCKS = [block for block in BLOCKS if block.language == "sh" and block.not_run is None]


def test_the_doc_has_blocks_of_each_kind():
    """The parser found the page's blocks (an empty list would pass every check below)."""
    assert len(SETTINGS_BLOCKS) >= 5 and len(RUN_BLOCKS) >= 2
    assert sum(block.not_run is not None for block in BLOCKS) >= 4


@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_every_block_is_checked_or_marked_not_run(block):
    if block.not_run is not None:
        commands = shell_commands(block.text) if block.language == "sh" else []
        assert not any(argv[0] == "code-llama-ls" for argv in commands), \
            f"{block}: code-llama-ls commands are run here, never marked as not run"
        pytest.skip(f"not run here: {block.not_run}")
    assert block.language in ("json", "sh"), \
        f"{block}: a ```{block.language} block is neither checked nor marked <!-- not run here: REASON -->"


def forwarded_keys() -> set[str]:
    """The server keys the VS Code extension forwards: every one its package.json contributes."""
    properties = json.loads(PACKAGE_JSON.read_text())["contributes"]["configuration"]["properties"]
    return {key.removeprefix("codeLlama.") for key in properties if not is_extension_setting(key)}


@pytest.mark.parametrize("block", SETTINGS_BLOCKS, ids=str)
def test_settings_block_is_valid_and_forwarded_by_vscode(block):
    settings = json.loads(block.text)
    if set(settings) == {"codeLlama"}:
        settings = settings["codeLlama"]
    unforwarded = set(settings) - forwarded_keys()
    assert not unforwarded, f"{block}: the VS Code extension does not forward {sorted(unforwarded)}"
    merged, warnings = merge_settings(Settings(), settings)
    assert warnings == [], f"{block}: {warnings}"
    assert {key: value for key, value in merged.model_dump(by_alias=True).items() if key in settings} == settings


# -- running the shell blocks -------------------------------------------------------------

APP_PY = "\n".join([
    '"""An inventory: the file the deployment checks complete and explain."""',
    "",
    "from dataclasses import dataclass, field",
    "",
    "",
    *(f"SHELF_{n} = {n}  # shelf numbers used by the warehouse" for n in range(5, 28)),
    "",
    "",
    "@dataclass",
    "class Item:",
    "    name: str",
    "    price: int",
    "",
    "",
    "@dataclass",
    "class Order:",
    "    items: list[Item] = field(default_factory=list)",
    "",
    "    def total(self) -> int:",
    "        ",
    "",
]) + "\n"
"""Line 41 is the empty body of ``Order.total`` at column 8; lines 10 to 30 exist."""


def offline_hub(cache: Path, repo_ids: set[str], files: Path) -> dict[str, str]:
    """A Hugging Face cache in which each hub id holds ``files`` (the trained tiny model), and the
    environment that makes the hub client read only from it."""
    revision = "0" * 40
    for repo in repo_ids:
        root = cache / f"models--{repo.replace('/', '--')}"
        (root / "snapshots" / revision).mkdir(parents=True)
        (root / "refs").mkdir()
        (root / "refs" / "main").write_text(revision)
        for file in files.iterdir():
            (root / "snapshots" / revision / file.name).symlink_to(file)
    return {"HF_HOME": str(cache.parent / "hf-home"), "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}


def scripted_server(served: set[str]):
    """An OpenAI-compatible handler that serves ``served`` and streams :data:`ANSWER`."""
    async def handler(request, reply):
        if request.method == "GET" and request.path == "/v1/models":
            await reply.json(200, {"object": "list", "data": [{"id": name, "object": "model"} for name in served]})
            return
        await stream_completion(reply, (ANSWER[:10], ANSWER[10:]))
    return handler


async def run_cli(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "code_llama_ls", *argv, cwd=cwd, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 300)
    return process.returncode, out.decode(), err.decode()


def check_model_server(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    """Start the doc's model server, see it serve the model on its socket, stop it."""
    args = build_parser().parse_args(argv)
    process = start_process([sys.executable, "-m", "code_llama_ls", *argv], cwd / "model-server.log", env)
    try:
        wait_healthy("http://localhost", process, uds=str(args.socket))
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(args.socket)), timeout=10) as client:
            served = [entry["id"] for entry in client.get("http://localhost/v1/models").json()["data"]]
        assert served == [args.model]
    finally:
        stop_group(process)


@pytest.mark.parametrize("block", RUN_BLOCKS, ids=str)
async def test_shell_block_runs(block, trained_model, tmp_path):
    pytest.importorskip("cryptography", reason="cryptography (the dev extra) makes the test CA")
    from test_tls import make_ca_and_server

    commands = shell_commands(block.text)
    cli = [argv[1:] for argv in commands if argv[0] == "code-llama-ls"]
    exports = [argv for argv in commands if argv[0] == "export"]
    others = [argv for argv in commands if argv[0] not in ("code-llama-ls", "export")]
    assert not others, f"{block}: {[' '.join(a) for a in others]} are neither run nor marked <!-- not run here -->"

    names = {value for argv in cli for flag, value in zip(argv, argv[1:]) if flag in ("--model", "--tokenizer")}
    served = {value for argv in cli for flag, value in zip(argv, argv[1:]) if flag == "--model"}
    ca_path, tls = make_ca_and_server(tmp_path)
    server = LoopbackServer(scripted_server(served))
    await server.start(ssl=tls)
    socket_dir = Path(tempfile.mkdtemp(prefix="cl-doc-"))  # short: a Unix socket path has ~100 bytes
    substitutes = {DOC_URL: server.url, DOC_CA: str(ca_path), DOC_SOCKET: str(socket_dir / "model.sock")}
    env = {**os.environ, **offline_hub(tmp_path / "hub", {n for n in names if HUB_ID.match(n)}, trained_model)}
    for argv in exports:
        name = argv[1].split("=", 1)[0]
        env[name] = f"test-value-of-{name}"
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(APP_PY)
    try:
        for argv in cli:
            argv = [substitutes.get(arg, arg) for arg in argv]
            args = build_parser().parse_args(argv)
            if args.command == "model-server":
                await asyncio.to_thread(check_model_server, argv, tmp_path, env)
                continue
            before = len(server.requests)
            code, out, err = await run_cli(argv, tmp_path, env)
            assert code == 0, f"{block}: code-llama-ls {' '.join(argv)} exited {code}:\n{err[-3000:]}"
            sent = [r for r in server.requests[before:] if r.path == "/v1/completions"]
            if args.command == "prompt":
                assert sent == [], "prompt builds the prompt locally and sends nothing"
                ids = json.loads(out)["ids"]
                assert ids and all(isinstance(i, int) for i in ids)
                continue
            assert sent, f"{block}: {args.command} sent no completion request"
            assert all(r.json["model"] == args.model for r in sent)
            assert all(isinstance(r.json["prompt"], list) for r in sent), "token ids, as vLLM takes them"
            if args.api_key_env:
                assert all(r.headers["authorization"] == f"Bearer {env[args.api_key_env]}" for r in sent)
            if args.command == "complete":
                assert out == ANSWER + "\n"
            else:
                assert ANSWER in out
    finally:
        await server.stop()
        shutil.rmtree(socket_dir, ignore_errors=True)
