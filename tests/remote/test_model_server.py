"""``code-llama-ls model-server`` as a real process on loopback: OpenAI's /v1/completions with
token-id and text prompts, streaming, stop strings and lengths, errors, cancellation when the
client disconnects, Unix sockets and the idle exit."""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest
from remote_servers import free_port, start_process, stop_group, wait_healthy
from tokenizers import Tokenizer

from benchmarks.tiny_model import KNOWN_EXAMPLES
from code_llama_ls.model_server.openai_api import text_prompt_ids
from code_llama_ls.prompts.fim import assemble
from code_llama_ls.prompts.tokenization import ModelTokenizer

ADD = KNOWN_EXAMPLES[0]


def model_server_command(model: Path, *where: str, idle: float = 600) -> list[str]:
    return [sys.executable, "-m", "code_llama_ls", "model-server", "--model", str(model), "--local-files-only",
            "--idle-timeout", str(idle), *where]


@pytest.fixture(scope="module")
def tokenizer(trained_model) -> ModelTokenizer:
    return ModelTokenizer.from_pretrained(str(trained_model), local_files_only=True)


@pytest.fixture(scope="module")
def server(trained_model, tmp_path_factory):
    port = free_port()
    process = start_process(model_server_command(trained_model, "--port", str(port)),
                            tmp_path_factory.mktemp("model-server") / "log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        with httpx.Client(base_url=url, timeout=60) as client:
            client.served = str(trained_model)
            yield client
    finally:
        stop_group(process)


def sse_events(response: httpx.Response) -> list:
    return [line[len("data: "):] for line in response.iter_lines() if line.startswith("data: ")]


@pytest.mark.parametrize("example", KNOWN_EXAMPLES, ids=lambda ex: ex.middle.split("\n")[0][:20])
def test_token_ids_give_the_known_completion(server, tokenizer, example):
    ids = assemble(tokenizer, example.prefix, example.suffix, "psm")
    reply = server.post("/v1/completions", json={"model": server.served, "prompt": ids, "max_tokens": 32,
                                                  "temperature": 0}).json()
    assert reply["object"] == "text_completion"
    assert reply["choices"][0]["text"] == example.middle
    assert reply["choices"][0]["finish_reason"] == "stop"
    generated = len(tokenizer.encode_infilling(example.middle))
    assert {k: reply["usage"][k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")} == {
        "prompt_tokens": len(ids), "completion_tokens": generated, "total_tokens": len(ids) + generated}


def test_a_repeated_prompt_prefix_is_served_from_the_kv_cache(server, tokenizer):
    """The backend's prefix KV cache: a request that extends the last one's prompt reuses it."""
    example = KNOWN_EXAMPLES[3]
    first = assemble(tokenizer, example.prefix, example.suffix, "spm")
    body = {"prompt": first, "max_tokens": 32, "temperature": 0}
    server.post("/v1/completions", json=body)
    typed = first + tokenizer.encode_infilling("for")  # the user typed the start of the answer
    again = server.post("/v1/completions", json={**body, "prompt": typed}).json()
    assert again["usage"]["prompt_tokens_details"]["cached_tokens"] >= len(first)
    assert again["choices"][0]["text"] == example.middle[len("for"):]


def test_stream_sends_openai_chunks_then_usage_and_done(server, tokenizer):
    ids = assemble(tokenizer, ADD.prefix, ADD.suffix, "spm")
    body = {"prompt": ids, "max_tokens": 32, "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    with server.stream("POST", "/v1/completions", json=body) as response:
        assert response.headers["content-type"] == "text/event-stream"
        events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len({c["id"] for c in chunks}) == 1
    texts = [c["choices"][0]["text"] for c in chunks if c["choices"]]
    assert len(texts) > 1 and "".join(texts) == ADD.middle
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == len(tokenizer.encode_infilling(ADD.middle))


def test_text_prompts_are_tokenized_as_hugging_face_does(server, trained_model, tokenizer):
    hf = Tokenizer.from_file(str(trained_model / "tokenizer.json"))
    psm = f"▁<PRE> {ADD.prefix}▁<SUF>{ADD.suffix}▁<MID>"
    for text in (psm, "def add(a, b):", "<s>x ▁<EOT> y", "x▁<SUF>  y"):
        assert text_prompt_ids(tokenizer, text) == hf.encode(text).ids, text
    # Leading spaces: SentencePiece's encoding (Meta's reference), where Hugging Face's differs.
    assert text_prompt_ids(tokenizer, "  two▁<SUF>\n") == [
        tokenizer.special.bos, *tokenizer.encode("  two"), tokenizer.special.suffix, *tokenizer.encode_infilling("\n")]
    assert text_prompt_ids(tokenizer, psm) == assemble(tokenizer, ADD.prefix, ADD.suffix, "psm")
    reply = server.post("/v1/completions", json={"prompt": [psm], "max_tokens": 32, "temperature": 0}).json()
    assert reply["choices"][0]["text"] == ADD.middle


def test_stop_strings_and_max_tokens(server, tokenizer):
    ids = assemble(tokenizer, ADD.prefix, ADD.suffix, "psm")
    stopped = server.post("/v1/completions", json={"prompt": ids, "temperature": 0, "stop": [" +"]}).json()
    assert stopped["choices"][0] | {"index": 0} == {"text": "return a", "index": 0, "logprobs": None, "finish_reason": "stop"}
    short = server.post("/v1/completions", json={"prompt": ids, "temperature": 0, "max_tokens": 2}).json()
    assert short["choices"][0]["finish_reason"] == "length"
    assert short["usage"]["completion_tokens"] == 2
    assert short["choices"][0]["text"] == ADD.middle[:len(short["choices"][0]["text"])] != ADD.middle


def test_bad_requests_get_openai_errors_and_the_server_goes_on(server, tokenizer):
    ids = assemble(tokenizer, ADD.prefix, ADD.suffix, "psm")
    cases = [
        ("POST", "/v1/completions", {"prompt": 5}, 400, "prompt must be"),
        ("POST", "/v1/completions", {"prompt": [1, 10**9]}, 400, "outside the vocabulary"),
        ("POST", "/v1/completions", {"prompt": ids, "model": "gpt-4"}, 404, "is not served here"),
        ("POST", "/v1/completions", {"prompt": ids, "max_tokens": 0}, 400, "max_tokens"),
        ("POST", "/v1/completions", {"prompt": ids, "n": 2}, 400, "n=1"),
        ("GET", "/v1/completions", None, 405, "takes POST"),
        ("GET", "/v1/chat/completions", None, 404, "no endpoint"),
    ]
    for method, path, body, status, message in cases:
        reply = server.request(method, path, json=body)
        assert reply.status_code == status, (path, body)
        assert message in reply.json()["error"]["message"]
    broken = server.post("/v1/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]["message"]
    models = server.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == [server.served]
    ok = server.post("/v1/completions", json={"prompt": ids, "temperature": 0, "max_tokens": 32}).json()
    assert ok["choices"][0]["text"] == ADD.middle


def test_unix_socket_disconnect_cancels_and_idle_exit(random_model, tmp_path):
    """On a random model (it almost never stops by itself): a client that goes away mid-stream
    stops its generation at once, and the server exits after its idle timeout, removing the socket."""
    path = tmp_path / "model.sock"
    process = start_process(model_server_command(random_model, "--socket", str(path), idle=3), tmp_path / "log")
    try:
        wait_healthy("http://localhost", process, uds=str(path))
        tok = ModelTokenizer.from_pretrained(str(random_model), local_files_only=True)
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(path)), base_url="http://localhost", timeout=30) as client:
            body = {"prompt": assemble(tok, "x = ", "\n", "psm"), "max_tokens": 16_000, "temperature": 0, "stream": True}
            with client.stream("POST", "/v1/completions", json=body) as response:
                first = next(line for line in response.iter_lines() if line.startswith("data: "))
                assert json.loads(first[6:])["choices"][0]["finish_reason"] is None
            # The stream is closed: the generation (minutes of tokens otherwise) must stop.
            deadline = time.monotonic() + 5
            while (health := client.get("/health").json())["active"] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert health["active"] == 0, "the generation went on after its client disconnected"
            assert health["requests"] == 1 and health["loads"] == 1
            quick = client.post("/v1/completions", json={"prompt": [1, 2, 3], "max_tokens": 1}).json()
            assert quick["usage"]["completion_tokens"] == 1
        process.wait(30)  # idle for 3 s: it exits by itself
        assert process.returncode == 0
        assert not path.exists()
    finally:
        stop_group(process)


def test_a_port_in_use_is_reported(trained_model, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = start_process(model_server_command(trained_model, "--port", str(port)), tmp_path / "log")
        assert process.wait(120) != 0
    assert "address already in use" in (tmp_path / "log").read_text().lower()


def test_model_server_runs_a_gguf_on_the_llama_cpp_engine(tiny_gguf, trained_model, tokenizer, llama_cpp_bindings,
                                                          tmp_path):
    """``--engine llama.cpp``: the same known completions, streamed, and the prompt's cached
    prefix reported (the engine keeps the last prompt's KV)."""
    from benchmarks import llama_cpp

    port = free_port()
    process = start_process([*model_server_command(tiny_gguf, "--port", str(port)), "--tokenizer", str(trained_model),
                             "--engine", "llama.cpp"], tmp_path / "log", env=llama_cpp.python_server_env())
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        with httpx.Client(base_url=url, timeout=60) as client:
            for example in KNOWN_EXAMPLES:
                ids = assemble(tokenizer, example.prefix, example.suffix, "psm")
                body = {"model": str(tiny_gguf), "prompt": ids, "max_tokens": 32, "temperature": 0}
                assert client.post("/v1/completions", json=body).json()["choices"][0]["text"] == example.middle
            with client.stream("POST", "/v1/completions", json={**body, "stream": True,
                                                                "stream_options": {"include_usage": True}}) as reply:
                events = [json.loads(e) for e in sse_events(reply) if e != "[DONE]"]
            assert "".join(c["text"] for e in events for c in e["choices"]) == KNOWN_EXAMPLES[-1].middle
            usage = events[-1]["usage"]
            assert usage["prompt_tokens_details"]["cached_tokens"] == len(ids) - 1  # all but the last prompt token
    finally:
        stop_group(process)
