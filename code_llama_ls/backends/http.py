"""What every remote backend shares: one pooled keep-alive ``httpx.AsyncClient`` per backend,
``unix:///path.sock`` URLs, TLS with an optional custom CA, the API key from an environment
variable, bounded retries for connection errors, streamed lines read with cancellation, and
error messages that say what went wrong without quoting code or keys.

Privacy: request bodies hold the user's code, so nothing here logs a body, a header or a server's
error detail that may echo the prompt (pydantic's ``input`` fields, for one) unless
``logPrompts`` is on.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

import httpx

from code_llama_ls.backends.base import BackendError, CancelToken
from code_llama_ls.settings import Settings

log = logging.getLogger(__name__)

CANCEL_POLL_S = 0.02
"""How often a stream waiting for the server's next bytes looks at its CancelToken."""
RETRY_BASE_S = 0.2
RETRY_MAX_S = 2.0
ERROR_DETAIL_CHARS = 300
_DEFAULTS = Settings.model_fields
_SETTING = {"timeout_s": "request_timeout_s"}
"""``RemoteOptions`` fields named otherwise than their setting."""


@dataclass(frozen=True)
class RemoteOptions:
    """The settings a remote backend needs, as plain values (defaults: the settings' own)."""

    url: str
    model: str
    api_key_env: str | None = _DEFAULTS["api_key_env"].default
    timeout_s: float = _DEFAULTS["request_timeout_s"].default
    max_retries: int = _DEFAULTS["max_retries"].default
    ca_cert_path: str | None = _DEFAULTS["ca_cert_path"].default
    prompt_format: str = _DEFAULTS["prompt_format"].default  # auto | token_ids | text
    instruct_endpoint: str = _DEFAULTS["instruct_endpoint"].default  # completions | chat
    log_prompts: bool = _DEFAULTS["log_prompts"].default

    @classmethod
    def from_settings(cls, settings: Settings) -> "RemoteOptions":
        named = {field.name: getattr(settings, _SETTING.get(field.name, field.name)) for field in fields(cls)}
        return cls(**{**named, "url": settings.url or ""})


@dataclass(frozen=True)
class Endpoint:
    """Where requests go: an HTTP(S) base URL, or a Unix socket (``base`` is then a dummy host)."""

    base: str  # no trailing slash
    uds: str | None = None
    shown: str = ""  # how messages name it (the URL as the user wrote it)

    @property
    def loopback(self) -> bool:
        if self.uds is not None:
            return True
        host = urlsplit(self.base).hostname or ""
        if host == "localhost" or host.endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


def parse_url(url: str | None) -> Endpoint:
    """``http(s)://host:port[/prefix]`` or ``unix:///abs/path.sock``; BackendError otherwise."""
    if not url or not url.strip():
        raise BackendError("a remote backend needs the server's address: set codeLlama.url "
                           "(http://host:port or unix:///path/to/socket)")
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme == "unix":
        path = parts.path
        if parts.netloc or not path.startswith("/"):
            raise BackendError(f"unix socket URLs take an absolute path: unix:///path/to/socket, not {url!r}")
        return Endpoint("http://localhost", uds=path, shown=url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BackendError(f"cannot use URL {url!r}: expected http://host:port, https://host or unix:///path")
    return Endpoint(url.rstrip("/"), shown=url)


def api_key(env_name: str | None) -> str | None:
    """The key from the environment variable named in ``apiKeyEnv`` (never logged)."""
    if not env_name:
        return None
    value = os.environ.get(env_name, "").strip()
    if not value:
        raise BackendError(f"apiKeyEnv names the environment variable {env_name}, which is not set or empty")
    return value


def build_client(endpoint: Endpoint, options: RemoteOptions) -> httpx.AsyncClient:
    """One pooled keep-alive client for a backend's lifetime (TLS verified; custom CA optional)."""
    if endpoint.base.startswith("http://") and not endpoint.loopback:
        log.warning("remote backend at %s uses plain HTTP to a non-loopback host: code and the API key "
                    "cross the network unencrypted; use https://", endpoint.shown)
    verify: bool | ssl.SSLContext = True
    if options.ca_cert_path:
        path = os.path.expanduser(options.ca_cert_path)
        try:
            verify = ssl.create_default_context(cafile=path)
        except (OSError, ssl.SSLError) as exc:
            raise BackendError(f"cannot read the CA certificate caCertPath={options.ca_cert_path!r}: {exc}") from exc
    headers = {"User-Agent": "code-llama-ls"}
    key = api_key(options.api_key_env)
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    limits = httpx.Limits(max_keepalive_connections=8, max_connections=32, keepalive_expiry=60.0)
    timeout = httpx.Timeout(options.timeout_s)
    if endpoint.uds is not None:
        transport = httpx.AsyncHTTPTransport(uds=endpoint.uds, limits=limits)
        return httpx.AsyncClient(base_url=endpoint.base, transport=transport, headers=headers, timeout=timeout)
    return httpx.AsyncClient(base_url=endpoint.base, headers=headers, timeout=timeout, limits=limits, verify=verify)


def error_detail(body: bytes, log_prompts: bool = False) -> str:
    """A short reason from a server's error body: the message fields of the usual shapes
    (``{"error": {"message"}}``, ``{"error": "…"}``, ``{"detail": [{"msg", "loc"}]}``,
    ``{"message"}``), never pydantic's ``input`` (it echoes the prompt)."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    found: list[str] = []
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            for key in ("message", "type", "code"):
                if error.get(key) not in (None, ""):
                    found.append(str(error[key]))
                    break
        elif isinstance(error, str):
            found.append(error)
        detail = data.get("detail")
        if isinstance(detail, list):
            for item in detail[:3]:
                if isinstance(item, dict) and "msg" in item:
                    where = ".".join(str(p) for p in item.get("loc", []))
                    found.append(f"{where}: {item['msg']}" if where else str(item["msg"]))
        elif isinstance(detail, str):
            found.append(detail)
        if not found and isinstance(data.get("message"), str):
            found.append(data["message"])
    elif log_prompts and text:
        found.append(text)
    elif text and len(text) < 120 and "\n" not in text:
        found.append(text)  # a short plain-text reason ("Not Found"), not a body that could hold code
    reason = "; ".join(found)
    return reason[:ERROR_DETAIL_CHARS] + ("…" if len(reason) > ERROR_DETAIL_CHARS else "")


class HttpStatusError(BackendError):
    def __init__(self, message: str, status: int, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


def describe_transport_error(exc: httpx.TransportError, endpoint: Endpoint, timeout_s: float) -> str:
    where = endpoint.shown
    if isinstance(exc, httpx.ConnectTimeout):
        return f"cannot connect to the inference server at {where}: no answer within {timeout_s:g} s"
    if isinstance(exc, httpx.ConnectError):
        reason = str(exc) or type(exc).__name__
        return f"cannot connect to the inference server at {where}: is it running? ({reason})"
    if isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout)):
        return f"the inference server at {where} sent nothing for {timeout_s:g} s (requestTimeoutS); gave up"
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        return f"the inference server at {where} closed the connection ({str(exc) or type(exc).__name__})"
    return f"request to the inference server at {where} failed: {str(exc) or type(exc).__name__}"


_RETRYABLE = (httpx.ConnectError, httpx.ConnectTimeout)


class Remote:
    """A backend's connection: the pooled client plus retries, status checks and line streams."""

    def __init__(self, options: RemoteOptions) -> None:
        self.options = options
        self.endpoint = parse_url(options.url)
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = build_client(self.endpoint, self.options)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def _backoff(self, attempt: int, cancel: CancelToken | None) -> bool:
        """Sleep before retry ``attempt`` (1-based); False when cancelled meanwhile."""
        delay = min(RETRY_BASE_S * 2 ** (attempt - 1), RETRY_MAX_S)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            if cancel is not None and cancel.cancelled:
                return False
            await asyncio.sleep(min(CANCEL_POLL_S * 5, max(deadline - time.monotonic(), 0)))
        return True

    async def get_json(self, path: str) -> tuple[int, Any]:
        """GET with retries for connection errors: (status, parsed body or None)."""
        response = await self._send("GET", path, None, None)
        try:
            body = await response.aread()
        finally:
            await response.aclose()
        try:
            return response.status_code, json.loads(body) if body else None
        except ValueError:
            return response.status_code, None

    async def open_stream(self, path: str, body: dict, cancel: CancelToken | None) -> httpx.Response:
        """POST and return the open streaming response (status checked: 2xx or HttpStatusError).

        Connection errors are retried ``max_retries`` times with backoff; nothing has been read
        from the server then, so a retry cannot repeat streamed text."""
        response = await self._send("POST", path, body, cancel)
        if response.status_code >= 400:
            try:
                raw = await response.aread()
            except httpx.TransportError:
                raw = b""
            finally:
                await response.aclose()
            detail = error_detail(raw, self.options.log_prompts)
            raise HttpStatusError(
                f"the inference server at {self.endpoint.shown} answered HTTP {response.status_code}"
                f"{' ' + response.reason_phrase if response.reason_phrase else ''} on {path}"
                f"{': ' + detail if detail else ''}", response.status_code, detail)
        return response

    async def _send(self, method: str, path: str, body: dict | None, cancel: CancelToken | None) -> httpx.Response:
        attempt = 0
        while True:
            try:
                request = self.client.build_request(method, path, json=body)
                return await self.client.send(request, stream=True)
            except _RETRYABLE as exc:
                attempt += 1
                if attempt > self.options.max_retries:
                    raise BackendError(describe_transport_error(exc, self.endpoint, self.options.timeout_s)
                                       + (f" (after {attempt} attempts)" if attempt > 1 else "")) from exc
                log.info("inference server at %s unreachable (%s); retry %d of %d", self.endpoint.shown,
                         type(exc).__name__, attempt, self.options.max_retries)
                if not await self._backoff(attempt, cancel):
                    raise BackendError("cancelled while waiting to retry") from exc
            except httpx.TransportError as exc:
                raise BackendError(describe_transport_error(exc, self.endpoint, self.options.timeout_s)) from exc


async def lines_until_cancelled(response: httpx.Response, cancel: CancelToken, endpoint: Endpoint,
                                timeout_s: float) -> AsyncIterator[str | None]:
    """The response's lines; ``None`` once when ``cancel`` is set (the response is then closed,
    so the server sees the disconnect). Transport failures become BackendError."""
    lines = response.aiter_lines()
    try:
        while True:
            if cancel.cancelled:
                yield None
                return
            step = asyncio.ensure_future(lines.__anext__())
            while not step.done():
                try:
                    await asyncio.wait({step}, timeout=CANCEL_POLL_S)
                except asyncio.CancelledError:  # the consumer itself was cancelled
                    step.cancel()
                    raise
                if cancel.cancelled and not step.done():
                    step.cancel()
                    try:
                        await step
                    except (asyncio.CancelledError, Exception):
                        pass
                    yield None
                    return
            try:
                line = step.result()
            except StopAsyncIteration:
                return
            except httpx.TransportError as exc:
                raise BackendError(describe_transport_error(exc, endpoint, timeout_s)) from exc
            yield line
    finally:
        await response.aclose()


def parse_json_line(payload: str, what: str) -> Any:
    try:
        return json.loads(payload)
    except ValueError as exc:
        raise BackendError(f"malformed JSON in the {what} stream ({len(payload)} characters; {exc.msg} at "
                           f"column {exc.colno})") from exc


def sse_data(line: str) -> str | None:
    """The payload of an SSE ``data:`` line (with or without the space; TGI omits it), else None."""
    if line.startswith("data:"):
        return line[5:].lstrip(" ")
    return None


class StopCutter:
    """Cuts streamed text at the first stop string, holding back a tail that may be a stop
    string's start until the next piece shows whether it is."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        text = self._held + text
        self._held = ""
        first = min(((text.find(s), s) for s in self.stops if s in text), default=None)
        if first is not None:
            self.stopped = True
            return text[:first[0]]
        keep = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(text)), 0, -1):
                if text.endswith(stop[:n]):
                    keep = max(keep, n)
                    break
        if keep:
            self._held = text[-keep:]
            return text[:-keep]
        return text

    def flush(self) -> str:
        held, self._held = self._held, ""
        return "" if self.stopped else held
