"""The VS Code extension (editors/vscode): its unit tests, its settings against the server's, and
the real thing end to end: code-server 4.139.1 in headless Chromium driven by playwright-core,
the built .vsix installed, against the real server with the trained tiny model.

Node 24, code-server and playwright-core come from tests/editors/vscode/setup_vscode.sh (cached
under ~/.cache/code-llama-ls/editors by version); chromium and libkrb5-dev from Debian (.ci/run).
Without npm or chromium the tests skip, saying so, unless CI is set: then they fail.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import typing
import urllib.request
from pathlib import Path

import pytest
from pydantic.alias_generators import to_camel

from benchmarks.tiny_model import INSTRUCT_EXAMPLES, INSTRUCT_SOURCE, KNOWN_EXAMPLES
from code_llama_ls.settings import Settings, merge_settings

REPO = Path(__file__).resolve().parents[2]
EXTENSION = REPO / "editors" / "vscode"
HERE = Path(__file__).resolve().parent / "vscode"
ARTIFACTS = REPO / "test-artifacts" / "vscode"
CHROMIUM = "/usr/bin/chromium"
ADD = next(ex for ex in KNOWN_EXAMPLES if ex.prefix == "def add(a, b):\n    " and ex.suffix == "\n")
# Typed inside a pair VS Code closed: the answer writes the ")" after the cursor too.
PAIR = next(ex for ex in KNOWN_EXAMPLES if ex.prefix.endswith("(") and ex.suffix.startswith(")")
            and ex.middle.endswith(")"))
PAIR_FILE = "area.py"
EXPLAIN = next(ex for ex in INSTRUCT_EXAMPLES if ex.kind == "explain")
DOCSTRING = next(ex for ex in INSTRUCT_EXAMPLES if ex.kind == "docstring" and ex.file == EXPLAIN.file)


def _require(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None and not Path(tool).is_file()]
    if missing:
        reason = (f"the VS Code tests need {' and '.join(missing)} "
                  "(Node.js with npm; apt-get install -y chromium libkrb5-dev)")
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"{reason}; under CI a missing prerequisite is a failure")
        pytest.skip(reason)


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done.stdout


def _setup(stage: str) -> dict:
    """Runs the setup script; returns an environment with Node 24 first on PATH, and its paths."""
    _require("npm")
    out = _run(["bash", str(HERE / "setup_vscode.sh"), stage], REPO, dict(os.environ), timeout=1200)
    paths = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    node_home = str(Path(paths["NODE_BIN"]).parent)
    env = {**os.environ, "PATH": f"{paths['NODE_BIN']}{os.pathsep}{os.environ['PATH']}", "npm_config_nodedir": node_home}
    return {**paths, "env": env}


@pytest.fixture(scope="session")
def node_env() -> dict:
    """Node 24 on PATH and the extension's dependencies installed (npm ci, skipped while the lock
    file is unchanged)."""
    setup = _setup("node")
    lock = hashlib.sha256((EXTENSION / "package-lock.json").read_bytes()).hexdigest()
    stamp = EXTENSION / "node_modules" / ".installed-lock-sha256"
    if not stamp.is_file() or stamp.read_text() != lock:
        _run(["npm", "ci", "--no-audit", "--no-fund"], EXTENSION, setup["env"], timeout=600)
        stamp.write_text(lock)
    return setup


def test_vscode_extension_unit_tests(node_env):
    out = _run(["npm", "test"], EXTENSION, node_env["env"], timeout=300)
    ran = re.search(r"^ℹ tests (\d+)$", out, re.M)
    assert ran and int(ran.group(1)) >= 10 and re.search(r"^ℹ fail 0$", out, re.M), out


def test_vscode_contributed_settings_are_generated_from_the_server_model():
    """package.json's codeLlama.<key> entries are what scripts/sync_settings.py writes from the
    settings model now (it fails when a server setting was added or changed without a rerun)."""
    done = subprocess.run([sys.executable, str(EXTENSION / "scripts" / "sync_settings.py"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_vscode_contributed_settings_match_the_server():
    """Each server setting is contributed with the server's default and choices, and nothing else is."""
    properties = json.loads((EXTENSION / "package.json").read_text())["contributes"]["configuration"]["properties"]
    fields = {to_camel(name): field for name, field in Settings.model_fields.items()}
    defaults = Settings().model_dump(by_alias=True, mode="json")
    server_keys = [key.removeprefix("codeLlama.") for key in properties
                   if "." not in key.removeprefix("codeLlama.") and key != "codeLlama.serverSettings"]
    assert server_keys == list(fields)
    for key in server_keys:
        assert properties[f"codeLlama.{key}"]["default"] == defaults[key], key
        if typing.get_origin(fields[key].annotation) is typing.Literal:
            assert properties[f"codeLlama.{key}"]["enum"] == list(typing.get_args(fields[key].annotation)), key


def test_vscode_readme_settings_example_works_on_a_fresh_machine():
    """The README's settings.json example: contributed settings only, values the server takes,
    and no localFilesOnly, which would stop a first start (nothing is cached yet)."""
    section = (REPO / "README.md").read_text().split("\n## VS Code\n", 1)[1].split("\n## ", 1)[0]
    example = json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))
    properties = json.loads((EXTENSION / "package.json").read_text())["contributes"]["configuration"]["properties"]
    assert set(example) <= set(properties), sorted(set(example) - set(properties))
    server = {**example.get("codeLlama.serverSettings", {}),
              **{key.removeprefix("codeLlama."): value for key, value in example.items()
                 if "." not in key.removeprefix("codeLlama.") and key != "codeLlama.serverSettings"}}
    merged, warnings = merge_settings(Settings(), server)
    assert warnings == [] and not merged.local_files_only


def _forwarded(node_env: dict, user: dict) -> dict:
    """What the extension's compiled code sends the server for these user settings."""
    _run(["npm", "run", "check"], EXTENSION, node_env["env"], timeout=300)  # tsc writes out/
    sent = _run(["node", str(HERE / "forwarded_settings.cjs"), json.dumps(user)], REPO, node_env["env"], timeout=60)
    return json.loads(sent)


def test_vscode_extension_forwards_every_server_setting(node_env):
    """With nothing set, the extension sends exactly the server's settings model: every key, each
    with the server's default; the remote keys the issue found missing go through when set."""
    assert _forwarded(node_env, {}) == Settings().model_dump(by_alias=True, mode="json")
    remote = {"backend": "openai", "url": "https://llm.internal", "apiKeyEnv": "CODE_LLAMA_API_KEY",
              "caCertPath": "/etc/ssl/certs/internal-ca.pem", "requestTimeoutS": 12.5, "promptFormat": "text",
              "tokenizer": "/opt/code-llama/tokenizer"}
    sent = _forwarded(node_env, remote)
    assert {key: sent[key] for key in remote} == remote
    merged, warnings = merge_settings(Settings(), sent)
    assert warnings == []
    assert {key: value for key, value in merged.model_dump(by_alias=True).items() if key in remote} == remote


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _user_settings(model: Path) -> dict:
    return {
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "workbench.secondarySideBar.defaultVisibility": "hidden",
        "workbench.welcomePage.walkthroughs.openOnInstall": False,
        "security.workspace.trust.enabled": False,
        "telemetry.telemetryLevel": "off",
        "update.mode": "none",
        "extensions.autoUpdate": False,
        "extensions.autoCheckUpdates": False,
        "extensions.ignoreRecommendations": True,
        "chat.disableAIFeatures": True,
        # No word-completion popup: it would take the Enter and Tab meant for the line and the ghost text.
        "editor.quickSuggestions": {"other": "off", "comments": "off", "strings": "off"},
        "editor.suggestOnTriggerCharacters": False,
        "files.autoSave": "off",
        # Typing "(" inserts "()" (and typing ")" before that ")" steps over it): what a user has.
        "editor.autoClosingBrackets": "always",
        "editor.autoClosingOvertype": "auto",
        # One "codeLlama" object, the way docs/deploy.md gives settings: VS Code must read its keys
        # as codeLlama.<key>, the extension's own (server.pythonPath) included.
        "codeLlama": {
            # This interpreter's server (this checkout's). Not PATH: code-server's extension host
            # takes PATH from a login shell, whose profile may drop a venv's bin folder.
            "server": {"pythonPath": sys.executable},
            "model": str(model),
            "device": "cpu",
            "maxNewTokens": 32,
            "localFilesOnly": True,
            "contextEnabled": False,
            "instructMaxNewTokens": 64,
            # A model that cannot load: the nested "model" above must count as set and win over it.
            "serverSettings": {"model": "/nonexistent/model"},
        },
    }


@pytest.fixture(scope="session")
def vsix(node_env) -> Path:
    """The extension packaged by its own script."""
    (EXTENSION / "code-llama.vsix").unlink(missing_ok=True)
    _run(["npm", "run", "package"], EXTENSION, node_env["env"], timeout=300)
    return EXTENSION / "code-llama.vsix"


@pytest.fixture(scope="session")
def code_server_env(node_env) -> dict:
    _require(CHROMIUM)
    return _setup("all")


@pytest.fixture
def code_server(code_server_env, vsix, trained_model, tmp_path):
    """code-server with the .vsix installed, its state kept in tmp_path, serving a workspace."""
    home = tmp_path / "code-server"
    user_data, extensions = home / "user-data", home / "extensions"
    (user_data / "User").mkdir(parents=True)
    (user_data / "User" / "settings.json").write_text(json.dumps(_user_settings(trained_model), indent=1))
    config = home / "config.yaml"
    config.write_text("auth: none\ncert: false\n")
    env = {**code_server_env["env"], "XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data"),
           "XDG_CACHE_HOME": str(home / "cache")}
    common = ["--user-data-dir", str(user_data), "--extensions-dir", str(extensions), "--config", str(config)]
    binary = code_server_env["CODE_SERVER"]
    _run([binary, *common, "--install-extension", str(vsix)], tmp_path, env, timeout=120)

    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "main.py").write_text(ADD.suffix)
    (workspace / PAIR_FILE).write_text(PAIR.suffix[len(")"):])  # VS Code types the ")" itself
    (workspace / EXPLAIN.file).write_text(INSTRUCT_SOURCE)
    port = _free_port()
    log_path = tmp_path / "code-server.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [binary, *common, "--auth", "none", "--bind-addr", f"127.0.0.1:{port}", "--disable-telemetry",
             "--disable-update-check", "--disable-workspace-trust", str(workspace)],
            env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"code-server did not start:\n{log_path.read_text()[-4000:]}")
                time.sleep(0.2)
        yield {"url": url, "workspace": workspace, "env": env, "log": log_path, "user_data": user_data,
               "playwright": code_server_env["PLAYWRIGHT_CORE"]}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _logs(server: dict) -> str:
    """code-server's log and the extension's output channel (the language server's log)."""
    parts = [server["log"].read_text()[-3000:]]
    for channel in server["user_data"].glob("logs/**/*Code Llama*.log"):
        parts.append(f"--- {channel.name}\n{channel.read_text()[-4000:]}")
    return "\n".join(parts)


def test_vscode_ghost_text_tab_auto_closed_pair_explain_panel_and_docstring(code_server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    report_path = ARTIFACTS / "report.json"
    for stale in [report_path, *ARTIFACTS.glob("vscode-*.png")]:
        stale.unlink(missing_ok=True)
    config = {
        "url": code_server["url"], "workspace": str(code_server["workspace"]), "chromium": CHROMIUM,
        "artifacts": str(ARTIFACTS), "report": str(report_path),
        "completion": {"file": "main.py", "type": ADD.prefix.split("\n")[0]},
        # Each line as typed; after Enter VS Code indents, so the indentation is not typed.
        "pair": {"file": PAIR_FILE, "lines": [line.lstrip(" ") for line in PAIR.prefix.split("\n")]},
        "explain": {"file": EXPLAIN.file, "docstringColumn": len("def a")},
    }
    env = {**code_server["env"], "PLAYWRIGHT_CORE": code_server["playwright"]}
    done = subprocess.run(["node", str(HERE / "drive_vscode.cjs"), json.dumps(config)], env=env,
                          capture_output=True, text=True, timeout=300)
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    for shot in report.get("screenshots", []):
        print(f"screenshot: {shot}")
    context = f"driver rc {done.returncode}\n{done.stderr[-3000:]}\nreport: {json.dumps(report, indent=1)}\n{_logs(code_server)}"
    assert "error" not in report and done.returncode == 0, context
    assert report["statusBefore"].startswith("Code Llama: ready"), context
    # Typing the first line and Enter (VS Code indents) leaves exactly the example's prefix and suffix.
    assert report["ghostText"] == ADD.middle, context
    assert report["completedFile"] == ADD.prefix + ADD.middle + ADD.suffix, context
    assert report["statusAfter"].startswith("Code Llama: ready, last completion "), context
    # Inside the auto-closed pair: the ")" after the cursor is VS Code's; the item writes one too
    # and its range covers VS Code's, so the ghost text is what goes before it, and accepting
    # leaves one ")".
    assert report["pairTypedLine"] == PAIR.prefix.split("\n")[-1] + ")", context
    assert report["pairGhostText"] == PAIR.middle.removesuffix(")"), context
    assert report["pairFile"] == PAIR.prefix + PAIR.middle + PAIR.suffix[len(")"):], context
    # The known answer, rendered: inline code spans become <code>.
    assert report["explanationHtml"].strip() == "<p>" + re.sub(r"`([^`]+)`", r"<code>\1</code>", EXPLAIN.answer) + "</p>", context
    assert report["explanationText"].strip() == EXPLAIN.answer.replace("`", ""), context
    # The edit came through workspace/applyEdit into the editor (one docstring, at the body's indentation).
    assert report["docstringFile"] == f'def add(a, b):\n    """{DOCSTRING.answer}"""\n    return a + b\n', context
    assert report["statusOff"].startswith("Code Llama: ready") and report["statusOff"].endswith(
        "; inline completions off"), context
