"""``code-llama-ls complete | prompt | explain … --backend openai --url URL`` against a loopback
server: the completion printed, and the ids sent equal to what ``prompt --json`` shows."""

from __future__ import annotations

import asyncio
import json
import sys

from loopback import answering, openai_models

from code_llama_ls.exits import EXIT_MODEL

SOURCE = "def add(a, b):\n\n\nprint(add(1, 2))\n"


async def cli(*args: str, env_key: str | None = None) -> tuple[int, str, str]:
    import os

    env = dict(os.environ)
    if env_key:
        env["CLI_TEST_KEY"] = env_key
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "code_llama_ls", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, out.decode(), err.decode()


async def test_complete_and_prompt_against_a_remote_server(serve, tokenizer_dir, tmp_path):
    server = await serve(answering(["    return", " a + b"]))
    file = tmp_path / "add.py"
    file.write_text(SOURCE)
    common = ["--line", "1", "--character", "0", "--model", "m", "--tokenizer", str(tokenizer_dir),
              "--local-files-only", "--backend", "openai", "--url", server.url, "--api-key-env", "CLI_TEST_KEY"]
    code, out, err = await cli("complete", str(file), *common, env_key="k-123")
    assert code == 0, err
    assert out == "    return a + b\n"
    sent = server.requests[-1]
    assert sent.headers["authorization"] == "Bearer k-123"
    code, out, err = await cli("prompt", str(file), *common, "--json")
    assert code == 0, err
    assert sent.json["prompt"] == json.loads(out)["ids"], "the CLI's prompt is what went over the wire"


async def test_complete_reports_a_server_error(serve, tokenizer_dir, tmp_path):
    async def fails(request, reply):
        if await openai_models(request, reply):
            return
        await reply.json(500, {"error": {"message": "no GPU left"}})

    server = await serve(fails)
    file = tmp_path / "add.py"
    file.write_text(SOURCE)
    code, out, err = await cli("complete", str(file), "--line", "1", "--character", "0", "--model", "m",
                               "--tokenizer", str(tokenizer_dir), "--local-files-only", "--backend", "openai",
                               "--url", server.url)
    assert code == EXIT_MODEL and out == ""
    assert "HTTP 500" in err and "no GPU left" in err


async def test_explain_against_a_remote_server(serve, tokenizer_dir, tmp_path):
    server = await serve(answering(["It adds", " two numbers."]))
    file = tmp_path / "add.py"
    file.write_text("def add(a, b):\n    return a + b\n")
    code, out, err = await cli("explain", str(file), "--range", "0:0-1:16", "--model", "m", "--tokenizer",
                               str(tokenizer_dir), "--local-files-only", "--backend", "openai", "--url", server.url)
    assert code == 0, err
    assert out.strip() == "It adds two numbers."
    body = server.requests[-1].json
    assert server.requests[-1].path == "/v1/completions"
    assert isinstance(body["prompt"], list) and body["prompt"][0] == 1, "the instruct prompt, token-exact"
