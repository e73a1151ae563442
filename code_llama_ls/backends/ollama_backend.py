"""Ollama's native ``/api/generate`` with ``raw: true`` (NDJSON stream).

``raw`` skips Ollama's prompt template, so the prompt is ours, but Ollama takes text only: the
token-exact ids are rendered as text (``remote_prompt.prompt_text``) and Ollama tokenizes them
again. Instruct requests use ``/api/chat`` (Ollama's own template) when ``instructEndpoint`` is
``chat``. Ollama's OpenAI-compatible ``/v1`` is the ``openai`` backend's.
"""

from __future__ import annotations

import logging

import httpx

from code_llama_ls.backends.base import BackendError, CancelToken, GenerationRequest, StopReason
from code_llama_ls.backends.http import Remote
from code_llama_ls.backends.openai_backend import stream_object, stream_text
from code_llama_ls.backends.remote import Event, Parser, RemoteBackend
from code_llama_ls.backends.remote_prompt import prompt_text, stop_strings

log = logging.getLogger(__name__)


def done_reason(value) -> StopReason:
    return "max_tokens" if value == "length" else "eot"


class OllamaBackend(RemoteBackend):
    name = "ollama"

    async def _check(self, remote: Remote) -> None:
        status, body = await remote.get_json("/api/tags")
        if status in (401, 403):
            raise self._auth_problem(status)
        if not 200 <= status < 300:
            raise BackendError(f"{remote.endpoint.shown} does not answer as an Ollama server: "
                               f"GET /api/tags gave HTTP {status}")
        models = body.get("models") if isinstance(body, dict) else None
        names = {m.get("name") for m in models if isinstance(m, dict)} if isinstance(models, list) else set()
        wanted = {self.model_name, f"{self.model_name}:latest"}
        if names and not names & wanted:
            raise BackendError(f"Ollama at {remote.endpoint.shown} has no model {self.model_name!r} "
                               f"(it has {', '.join(sorted(map(str, names))[:5])}); run `ollama pull {self.model_name}`")

    def options_for(self, request: GenerationRequest) -> dict:
        options: dict = {"num_predict": request.max_new_tokens, "temperature": request.temperature}
        stops = stop_strings(self.tokenizer, request.stop_ids)
        if stops:
            options["stop"] = stops
        return options

    def generate_body(self, request: GenerationRequest) -> dict:
        return {"model": self.model_name, "prompt": prompt_text(self.tokenizer, request.prompt_ids), "raw": True,
                "stream": True, "options": self.options_for(request)}

    def chat_body(self, request: GenerationRequest) -> dict:
        return {"model": self.model_name, "stream": True, "options": self.options_for(request),
                "messages": [{"role": role, "content": content} for role, content in request.messages]}

    async def _open(self, remote: Remote, request: GenerationRequest,
                    cancel: CancelToken) -> tuple[httpx.Response, Parser]:
        if request.messages and self.options.instruct_endpoint == "chat":
            return await remote.open_stream("/api/chat", self.chat_body(request), cancel), self._parser("chat")
        return await remote.open_stream("/api/generate", self.generate_body(request), cancel), self._parser("generate")

    def _parser(self, kind: str) -> Parser:
        log_prompts = self.options.log_prompts
        what = f"Ollama {kind}"

        def parse(line: str) -> Event | None:
            if not line.strip():
                return None
            obj = stream_object(line, what, log_prompts)
            text = stream_text(obj, "message" if kind == "chat" else "response", what, kind == "chat")
            if obj.get("done") is True:
                count = obj.get("eval_count")
                return Event(text, done_reason(obj.get("done_reason")), done=True,
                             tokens=count if isinstance(count, int) else None)
            return Event(text)

        return parse
