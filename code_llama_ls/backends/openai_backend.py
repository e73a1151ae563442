"""OpenAI-compatible ``/v1/completions`` (vLLM, TGI, llama.cpp's server, Ollama's ``/v1``, our
``code-llama-ls model-server``), streamed as server-sent events.

The prompt goes as **token ids** where the server takes them (vLLM, llama.cpp, the model server),
so the model sees exactly the in-process prompt; otherwise as text (``remote_prompt.prompt_text``).
``promptFormat: auto`` tries ids on a URL's first request and, when the server refuses them with
HTTP 400/422 (or llama-cpp-python's 500 about a string prompt), sends text from then on (remembered per URL for the process's life).

Stop: ``stop_token_ids`` (vLLM) and the stop tokens' text as ``stop`` strings (servers that stop
on text), and the text is cut client-side at the first stop string as well. Instruct requests
(with ``messages``) use ``/v1/chat/completions`` when ``instructEndpoint`` is ``chat``; otherwise
they are ordinary completions of the token-exact instruct prompt.
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx

from code_llama_ls.backends.base import BackendError, CancelToken, GenerationRequest, StopReason
from code_llama_ls.backends.http import (
    HttpStatusError,
    Remote,
    RemoteOptions,
    error_detail,
    parse_json_line,
    sse_data,
)
from code_llama_ls.backends.remote import Event, Parser, RemoteBackend, options_with
from code_llama_ls.backends.remote_prompt import prompt_text, stop_strings

log = logging.getLogger(__name__)

_FORMATS: dict[tuple[str, str | None], str] = {}
"""What ``promptFormat: auto`` learned per server: ``token_ids`` or ``text``."""
REJECTED_PROMPT_STATUS = (400, 422)
"""A server that cannot take token ids refuses the request with one of these (llama-cpp-python: 422)."""
_STRING_PROMPT_ONLY = "valid string"
"""llama-cpp-python with a newer FastAPI leaks its prompt validation error as HTTP 500 ("Input
should be a valid string"): that 500, and no other, is a refusal of token ids too."""


def _refuses_token_ids(exc: HttpStatusError) -> bool:
    return exc.status in REJECTED_PROMPT_STATUS or (exc.status == 500 and _STRING_PROMPT_ONLY in exc.detail)
MAX_STOP_STRINGS = 4  # OpenAI's limit; vLLM and llama.cpp take more
READY_POLL_S = 0.5


def finish_reason(value) -> StopReason | None:
    if value in (None, ""):
        return None
    return "max_tokens" if value == "length" else "eot"


def stream_object(payload: str, what: str, log_prompts: bool) -> dict:
    """One JSON object of a ``what`` stream; a malformed one, or one that reports the server's
    error, is a BackendError."""
    obj = parse_json_line(payload, what)
    if not isinstance(obj, dict):
        raise BackendError(f"malformed {what} stream: expected a JSON object, got {type(obj).__name__}")
    if obj.get("error") is not None:
        import json

        detail = error_detail(json.dumps(obj).encode(), log_prompts)
        raise BackendError(f"the inference server reported an error in the {what} stream"
                           f"{': ' + detail if detail else ''}")
    return obj


def stream_text(part: dict, key: str, what: str, chat: bool) -> str:
    """The text a streamed piece adds: ``part[key]``, or for a chat piece the ``content`` of the
    message or delta under ``key``; ``""`` where there is none."""
    value = part.get(key)
    if chat:
        value = value.get("content") if isinstance(value, dict) else ""
    value = value or ""
    if not isinstance(value, str):
        raise BackendError(f"malformed {what} stream: text is {type(value).__name__}, not a string")
    return value


class OpenAICompletionsBackend(RemoteBackend):
    name = "openai"

    def _adjust(self, options: RemoteOptions) -> RemoteOptions:
        url = (options.url or "").rstrip("/")
        if url.endswith("/v1"):  # "http://host:8000/v1" as OpenAI clients write it
            return options_with(options, url=url[:-3])
        return options

    # -- health ---------------------------------------------------------------------------

    async def _check(self, remote: Remote) -> None:
        deadline = time.monotonic() + self.options.timeout_s
        while True:
            status, body = await remote.get_json("/v1/models")
            if status in (401, 403):
                raise self._auth_problem(status)
            if 200 <= status < 300:
                self._note_models(body)
                return
            health, _ = await remote.get_json("/health")
            if health in (401, 403):
                raise self._auth_problem(health)
            if 200 <= health < 300:
                return
            if 503 in (status, health) and time.monotonic() < deadline:  # llama.cpp: still loading the model
                await asyncio.sleep(READY_POLL_S)
                continue
            raise BackendError(f"{remote.endpoint.shown} does not answer as an OpenAI-compatible inference "
                               f"server: GET /v1/models gave HTTP {status}, GET /health HTTP {health}")

    def _note_models(self, body) -> None:
        data = body.get("data") if isinstance(body, dict) else None
        names = [m.get("id") for m in data if isinstance(m, dict)] if isinstance(data, list) else []
        if names and self.model_name not in names:
            log.warning("the server at %s serves %s, not %r; set codeLlama.model to the served name "
                        "(vLLM refuses other names)", self._remote.endpoint.shown if self._remote else "?",
                        ", ".join(map(str, names[:5])), self.model_name)

    # -- requests -------------------------------------------------------------------------

    def _key(self, remote: Remote) -> tuple[str, str | None]:
        return remote.endpoint.base, remote.endpoint.uds

    def prompt_format(self, remote: Remote) -> str | None:
        """``token_ids`` or ``text``; None while ``auto`` has not probed this server yet."""
        if self.options.prompt_format != "auto":
            return self.options.prompt_format
        return _FORMATS.get(self._key(remote))

    def completion_body(self, request: GenerationRequest, prompt: list[int] | str) -> dict:
        body: dict = {
            "model": self.model_name,
            "prompt": prompt,
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        stops = stop_strings(self.tokenizer, request.stop_ids)
        if stops:
            body["stop"] = stops[:MAX_STOP_STRINGS]
        if request.stop_ids:
            body["stop_token_ids"] = sorted(request.stop_ids)
        return body

    def chat_body(self, request: GenerationRequest) -> dict:
        body: dict = {
            "model": self.model_name,
            "messages": [{"role": role, "content": content} for role, content in request.messages],
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        stops = [s for s in stop_strings(self.tokenizer, request.stop_ids) if s.strip()]
        if stops:
            body["stop"] = stops[:MAX_STOP_STRINGS]
        return body

    async def _open(self, remote: Remote, request: GenerationRequest,
                    cancel: CancelToken) -> tuple[httpx.Response, Parser]:
        if request.messages and self.options.instruct_endpoint == "chat":
            response = await remote.open_stream("/v1/chat/completions", self.chat_body(request), cancel)
            return response, self._parser("chat")
        known = self.prompt_format(remote)
        if known == "text":
            body = self.completion_body(request, prompt_text(self.tokenizer, request.prompt_ids))
            return await remote.open_stream("/v1/completions", body, cancel), self._parser("completions")
        body = self.completion_body(request, list(request.prompt_ids))
        try:
            response = await remote.open_stream("/v1/completions", body, cancel)
        except HttpStatusError as exc:
            if known is not None or not _refuses_token_ids(exc):
                raise
            log.info("%s refused a token-id prompt (HTTP %d); trying text (promptFormat: auto)",
                     remote.endpoint.shown, exc.status)
            body = self.completion_body(request, prompt_text(self.tokenizer, request.prompt_ids))
            response = await remote.open_stream("/v1/completions", body, cancel)
            _FORMATS[self._key(remote)] = "text"
            log.warning("%s takes text prompts only: prompts are sent as text, which Code Llama's Hugging Face "
                        "tokenizer (TGI, vLLM) turns back into the same ids but llama.cpp-based servers may not",
                        remote.endpoint.shown)
            return response, self._parser("completions")
        if known is None:
            _FORMATS[self._key(remote)] = "token_ids"
        return response, self._parser("completions")

    def _parser(self, kind: str) -> Parser:
        log_prompts = self.options.log_prompts

        def parse(line: str) -> Event | None:
            data = sse_data(line)
            if data is None:
                return None  # blank separator, ": comment", "event:" or "id:" lines
            if data.strip() == "[DONE]":
                return Event(done=True)
            obj = stream_object(data, kind, log_prompts)
            choices = obj.get("choices") or []
            text, finish = "", None
            if choices and isinstance(choices[0], dict):
                choice = choices[0]
                text = stream_text(choice, "delta" if kind == "chat" else "text", kind, kind == "chat")
                finish = finish_reason(choice.get("finish_reason"))
            usage = obj.get("usage")
            tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
            return Event(text, finish, tokens=tokens if isinstance(tokens, int) else None)

        return parse
