"""llama.cpp's own server: ``/infill`` for completions, ``/v1/completions`` for the rest.

``/infill`` builds the infilling prompt on the server from ``input_prefix``, ``input_suffix``
and ``input_extra`` (here: the context engine's snippets, as ``{"filename", "text"}``), with
llama.cpp's own tokenization and layout: it is not token-exact by nature (the README says so).
Requests without infilling texts (explain/ask/docstring/tests) go to ``/v1/completions`` with
token ids, as the ``openai`` backend sends them.
"""

from __future__ import annotations

import httpx

from code_llama_ls.backends.base import BackendError, CancelToken, GenerationRequest, StopReason
from code_llama_ls.backends.http import Remote, sse_data
from code_llama_ls.backends.openai_backend import OpenAICompletionsBackend, stream_object
from code_llama_ls.backends.remote import Event, Parser
from code_llama_ls.backends.remote_prompt import stop_strings


def stop_type(obj: dict) -> StopReason:
    kind = obj.get("stop_type")
    if kind == "limit" or obj.get("stopped_limit"):
        return "max_tokens"
    return "eot"  # "eos", "word" (a stop string), older servers' stopped_eos / stopped_word


class LlamaCppBackend(OpenAICompletionsBackend):
    name = "llamacpp"

    def infill_body(self, request: GenerationRequest) -> dict:
        parts = request.infill
        assert parts is not None
        body: dict = {
            "input_prefix": parts.prefix,
            "input_suffix": parts.suffix,
            "input_extra": [{"filename": path, "text": text} for path, text in parts.extra],
            "prompt": "",
            "n_predict": request.max_new_tokens,
            "temperature": request.temperature,
            "stream": True,
            "cache_prompt": True,
        }
        stops = stop_strings(self.tokenizer, request.stop_ids)
        if stops:
            body["stop"] = stops
        return body

    async def _open(self, remote: Remote, request: GenerationRequest,
                    cancel: CancelToken) -> tuple[httpx.Response, Parser]:
        if request.infill is None:
            return await super()._open(remote, request, cancel)
        return await remote.open_stream("/infill", self.infill_body(request), cancel), self._infill_parser()

    def _infill_parser(self) -> Parser:
        log_prompts = self.options.log_prompts

        def parse(line: str) -> Event | None:
            data = sse_data(line)
            if data is None:
                return None
            obj = stream_object(data, "infill", log_prompts)
            text = obj.get("content") or ""
            if not isinstance(text, str):
                raise BackendError(f"malformed infill stream: content is {type(text).__name__}, not a string")
            if obj.get("stop") is True:
                count = obj.get("tokens_predicted")
                return Event(text, stop_type(obj), done=True, tokens=count if isinstance(count, int) else None)
            return Event(text)

        return parse
