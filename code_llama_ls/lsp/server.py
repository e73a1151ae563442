"""LSP wiring only: capabilities, handlers, notifications. The work happens in the stages."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

from lsprotocol import types
from lsprotocol.converters import get_converter
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from code_llama_ls import __version__
from code_llama_ls.actions.service import ActionService, instruct_settings
from code_llama_ls.backends.base import BackendError
from code_llama_ls.completion.engine import CompletionEngine, CompletionSkipped
from code_llama_ls.context.engine import ContextEngine
from code_llama_ls.documents import (Document, DocumentError, DocumentStore, Encoding, Position, PositionError,
                                     position_encoding, uri_to_path)
from code_llama_ls.lifetime import exit_now, exit_on_interrupt
from code_llama_ls.lsp.actions import COMMANDS, CURRENT_REQUEST, EXPLAIN_REQUEST, ActionsLsp
from code_llama_ls.lsp.convert import as_dict, lsp_range
from code_llama_ls.memory import process_memory
from code_llama_ls.prompts.at_cursor import build_prompt
from code_llama_ls.runtime.manager import RuntimeEvents, RuntimeManager
from code_llama_ls.settings import Settings, merge_settings

log = logging.getLogger(__name__)
STATUS_NOTIFICATION = "codeLlama/status"
PROMPT_REQUEST = "codeLlama/prompt"
DOCUMENT_TEXT_REQUEST = "codeLlama/documentText"
ENGINE_STATS_REQUEST = "codeLlama/engineStats"
_converter = get_converter()


class _Undecodable:
    """A message whose params could not be decoded; already answered or logged."""

    jsonrpc = "2.0"


class CodeLlamaProtocol(LanguageServerProtocol):
    """pygls' protocol with two changes. Our ``DocumentStore`` is the only copy of open
    documents (pygls' own copy would double the memory and fail on edits to unknown
    documents). A message whose params cannot be decoded is answered with InvalidParams (a
    request) or logged (a notification) instead of being dropped unanswered."""

    def structure_message(self, data: dict[str, Any]):
        try:
            return super().structure_message(data)
        except (JsonRpcInvalidParams, Exception) as exc:
            if not isinstance(data, dict) or "method" not in data:
                raise
            method = data.get("method")
            message = f"{method}: params could not be decoded ({exc.__class__.__name__}); ignored"
            if "id" in data:  # request params carry positions, not code: show them
                message += f": {json.dumps(data.get('params'))[:300]}"
                self._send_response(data["id"], error=JsonRpcInvalidParams(message).to_response_error())
            self.notify(types.WINDOW_LOG_MESSAGE, types.LogMessageParams(type=types.MessageType.Warning,
                                                                         message=message))
            return _Undecodable()

    def handle_message(self, message):
        if not isinstance(message, _Undecodable):
            super().handle_message(message)

    def _handle_request(self, msg_id, method_name: str, params: Any):
        token = CURRENT_REQUEST.set(msg_id)  # command handlers run as their own task: let them know the id
        try:
            super()._handle_request(msg_id, method_name, params)
        finally:
            CURRENT_REQUEST.reset(token)

    def _handle_cancel_notification(self, msg_id) -> None:
        super()._handle_cancel_notification(msg_id)
        self._server.actions.cancel_request(msg_id)

    def _execute_handler(self, msg_id, handler, callback, args=None, kwargs=None):
        """pygls 2.1 files the future of every notification it runs as a coroutine or a generator
        (didOpen, didChange, didClose here) in ``_request_futures`` under a made-up id and never
        takes it out again: one future per keystroke. Take it out once it is done."""
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        if callback == self._check_handler_result and (future := self._request_futures.get(msg_id)) is not None:
            future.add_done_callback(lambda _: self._request_futures.pop(msg_id, None))

    def _user_handler(self, method: str, params: Any):
        if (handler := self.fm.features.get(method)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams):
        yield from self._user_handler(types.TEXT_DOCUMENT_DID_OPEN, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):
        yield from self._user_handler(types.TEXT_DOCUMENT_DID_CHANGE, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams):
        yield from self._user_handler(types.TEXT_DOCUMENT_DID_CLOSE, params)


class CodeLlamaServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("code-llama-ls", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
                         protocol_cls=CodeLlamaProtocol)
        self.settings = Settings()
        self.documents = DocumentStore()
        self.client_has_inline_completion = False
        self._progress_token: str | None = None
        self._progress_task: asyncio.Future | None = None
        self._status: dict[str, Any] = {"state": "loading", "model": self.settings.model, "lastLatencyMs": None,
                                        "message": ""}
        events = RuntimeEvents(
            status=self._set_state,
            progress_begin=self._loading_begin,
            progress_report=self._loading_report,
            progress_end=self._loading_end,
            error=lambda message: self.window_show_message(
                types.ShowMessageParams(type=types.MessageType.Error, message=message)),
        )
        self.runtime = RuntimeManager(lambda: self.settings, events)
        self.context = ContextEngine(lambda: self.settings, self.documents, [])
        self.engine = CompletionEngine(self.runtime.get, lambda: self.settings, self._generated, self.context)
        # explain / ask / docstring / tests: the completion model's runtime unless instructModel differs
        self.roots: list = []
        self.instruct_runtime = RuntimeManager(lambda: instruct_settings(self.settings), events)
        self.actions = ActionsLsp(self, ActionService(self._instruct_runtime, lambda: self.settings, self.context,
                                                      self.context_roots, self._read_for_actions))

    def _instruct_runtime(self):
        if self.settings.instruct_model_name == self.settings.model:
            return self.runtime.get()
        return self.instruct_runtime.get()

    def context_roots(self) -> list:
        return list(self.roots)

    def _read_for_actions(self, path):
        """An open document's text wins over the file on disk (None: no such file)."""
        uri = path.as_uri()
        if uri in self.documents:
            return self.documents.get(uri).text
        try:
            return path.read_bytes().decode("utf-8")  # line breaks as they are: edits keep a CRLF file CRLF
        except (OSError, UnicodeDecodeError):
            return None

    # -- settings ----------------------------------------------------------------------------

    def apply_settings(self, changes: Any) -> None:
        if isinstance(changes, dict) and isinstance(changes.get("codeLlama"), dict):
            changes = changes["codeLlama"]
        self.settings, warnings = merge_settings(self.settings, changes)
        for warning in warnings:
            self.log(warning, types.MessageType.Warning)

    def log(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        log.log(logging.WARNING if kind <= types.MessageType.Warning else logging.INFO, message)
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    # -- status and progress ---------------------------------------------------------------

    def _set_state(self, state: str, message: str) -> None:
        self._status.update(state=state, message=message)
        self.send_status()

    def _generated(self, info: dict) -> None:
        self._status.update(lastLatencyMs=info["latencyMs"], lastTokens=info["tokens"],
                            lastStopReason=info["stopReason"], lastPromptTokens=info["promptTokens"],
                            lastPromptMode=info["promptMode"])
        self.send_status()

    def send_status(self) -> None:
        self._status["model"] = self.settings.model
        loaded = self.runtime.loaded
        self._status["completionMode"] = loaded.capabilities.completion_mode if loaded is not None else None
        self.protocol.notify(STATUS_NOTIFICATION, dict(self._status))

    def _supports_progress(self) -> bool:
        window = self.client_capabilities.window if self.protocol.client_capabilities else None
        return bool(window and window.work_done_progress)

    async def begin_progress(self, token: str, begin: types.WorkDoneProgressBegin) -> bool:
        """A progress bar under ``token``, where the client takes one (it may refuse the token)."""
        if not self._supports_progress():
            return False
        try:
            await self.work_done_progress.create_async(token)
        except Exception as exc:  # the client refused the token: the work goes on without a bar
            log.info("no progress bar for %s: %s", token, exc)
            return False
        self.work_done_progress.begin(token, begin)
        return True

    def report_progress(self, token: str, report: types.WorkDoneProgressReport) -> None:
        self.work_done_progress.report(token, report)

    def end_progress(self, token: str, end: types.WorkDoneProgressEnd) -> None:
        self.work_done_progress.end(token, end)

    def _loading_begin(self, title: str) -> None:
        token = f"code-llama-load-{uuid.uuid4()}"

        async def begin() -> None:
            if await self.begin_progress(token, types.WorkDoneProgressBegin(title=title, percentage=0)):
                self._progress_token = token

        self._progress_task = asyncio.ensure_future(begin())

    def _loading_report(self, message: str, percentage: int | None) -> None:
        token = self._progress_token
        if token is not None:
            self.report_progress(token, types.WorkDoneProgressReport(message=message, percentage=percentage))

    def _loading_end(self, message: str) -> None:
        token, self._progress_token = self._progress_token, None
        if token is not None:
            self.end_progress(token, types.WorkDoneProgressEnd(message=message))

    # -- what the actions reach the client through (``ActionHost``) --------------------------

    def notify(self, method: str, params: Any) -> None:
        self.protocol.notify(method, params)

    def show(self, message: str, kind: types.MessageType) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))
        self.log(message, kind)

    async def apply_edit(self, params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        return await self.workspace_apply_edit_async(params)

    # -- requests --------------------------------------------------------------------------

    @property
    def position_encoding(self) -> Encoding:
        """The encoding negotiated in ``initialize``: every position in or out is counted in it."""
        return position_encoding(self.workspace.position_encoding)

    def locate(self, uri: str, position: types.Position) -> tuple[Document, int]:
        document = self.documents.get(uri)
        return document, document.offset_at(Position(position.line, position.character), self.position_encoding)

    async def complete(self, uri: str, position: types.Position, automatic: bool = False):
        """The pipeline's suggestion, or None with a log line saying why not."""
        try:
            document, offset = self.locate(uri, position)
            self.context.note_view(uri, position.line)
            return document, await self.engine.complete(document, offset, automatic)
        except (DocumentError, PositionError, CompletionSkipped) as exc:
            self.log(f"no completion for {uri}: {exc}", types.MessageType.Warning)
        except BackendError as exc:
            if self.runtime.loaded is not None:  # the model answered badly (a load failure was shown once)
                self.log(f"no completion: {exc}", types.MessageType.Warning)
            else:
                log.info("no completion: %s", exc)
        return None, None

    def range_at(self, document: Document, start: int, end: int) -> types.Range:
        return lsp_range(document, start, end, self.position_encoding)


server = CodeLlamaServer()


@server.feature(types.INITIALIZE)
def initialize(ls: CodeLlamaServer, params: types.InitializeParams) -> None:
    text_document = params.capabilities.text_document
    ls.client_has_inline_completion = bool(text_document and text_document.inline_completion is not None)
    ls.apply_settings(params.initialization_options)
    folders = [f.uri for f in params.workspace_folders or []] or ([params.root_uri] if params.root_uri else [])
    ls.roots = [path for path in map(uri_to_path, folders) if path is not None]
    ls.context.set_roots(ls.roots)


@server.feature(types.INITIALIZED)
def initialized(ls: CodeLlamaServer, params: types.InitializedParams) -> None:
    ls.send_status()
    ls.runtime.get()  # start loading the model now, off the event loop


@server.feature(types.SHUTDOWN)
async def shutdown(ls: CodeLlamaServer, params: None) -> None:
    await ls.runtime.close()
    await ls.instruct_runtime.close()


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def did_change_configuration(ls: CodeLlamaServer, params: types.DidChangeConfigurationParams) -> None:
    ls.apply_settings(params.settings)
    ls.runtime.get()  # reloads only if the model settings changed


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: CodeLlamaServer, params: types.DidOpenTextDocumentParams) -> None:
    item = params.text_document
    ls.documents.open(item.uri, item.text, item.version, item.language_id)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: CodeLlamaServer, params: types.DidChangeTextDocumentParams) -> None:
    uri = params.text_document.uri
    try:
        document = ls.documents.get(uri)
    except DocumentError as exc:
        ls.log(f"change ignored: {exc}", types.MessageType.Warning)
        return
    encoding = ls.position_encoding
    for change in params.content_changes:
        if isinstance(change, types.TextDocumentContentChangePartial):
            start, end = change.range.start, change.range.end
            document.apply_change(change.text, Position(start.line, start.character),
                                  Position(end.line, end.character), encoding)
            ls.context.note_edit(uri, start.line)
        else:
            document.apply_change(change.text)
    document.version = params.text_document.version


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: CodeLlamaServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.documents.close(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
async def inline_completion(ls: CodeLlamaServer, params: types.InlineCompletionParams):
    automatic = params.context is not None and params.context.trigger_kind == types.InlineCompletionTriggerKind.Automatic
    document, completion = await ls.complete(params.text_document.uri, params.position, automatic)
    if completion is None:
        return types.InlineCompletionList(items=[])
    return types.InlineCompletionList(items=[types.InlineCompletionItem(
        insert_text=completion.text,
        range=ls.range_at(document, completion.offset, completion.offset + completion.replace_end),
    )])


@server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[]))
async def completion(ls: CodeLlamaServer, params: types.CompletionParams):
    """Model items only for clients without inline completion, so nothing is generated twice."""
    if ls.client_has_inline_completion:
        return types.CompletionList(is_incomplete=False, items=[])
    document, result = await ls.complete(params.text_document.uri, params.position)
    if result is None:
        return types.CompletionList(is_incomplete=True, items=[])
    first_line = result.text.strip().splitlines()[0]
    return types.CompletionList(is_incomplete=True, items=[types.CompletionItem(
        label=first_line[:80],
        kind=types.CompletionItemKind.Text,
        detail="Code Llama",
        text_edit=types.TextEdit(range=ls.range_at(document, result.offset, result.offset + result.replace_end),
                                 new_text=result.text),
        filter_text=first_line,
        sort_text="0",
    )])


@server.feature(PROMPT_REQUEST)
async def prompt(ls: CodeLlamaServer, params: Any):
    """The exact prompt the model would see at a position (same object as the CLI's JSON); with
    ``{action, range}`` the instruct prompt of that action (explain, ask, docstring, tests)."""
    data = as_dict(params)
    if isinstance(data, dict) and "action" in data:
        return await ls.actions.prompt_request(data)
    try:
        position_params = _converter.structure(as_dict(params), types.TextDocumentPositionParams)
        document, offset = ls.locate(position_params.text_document.uri, position_params.position)
        ls.engine.check_allowed(document)
        runtime = await ls.runtime.get()
    except (DocumentError, PositionError, CompletionSkipped, BackendError) as exc:
        ls.log(f"{PROMPT_REQUEST}: {exc}", types.MessageType.Warning)
        raise ValueError(str(exc)) from exc
    except Exception as exc:  # malformed params
        raise ValueError(f"{PROMPT_REQUEST} expects TextDocumentPositionParams: {exc}") from exc
    return build_prompt(document, offset, runtime.tokenizer, ls.settings, runtime.backend.device_type,
                        ls.context, capabilities=runtime.capabilities).to_json()


@server.feature(DOCUMENT_TEXT_REQUEST)
def document_text(ls: CodeLlamaServer, params: Any):
    """``{textDocument: {uri}}`` → the server's copy ``{uri, version, languageId, text}``: what the
    client sent, so it reveals nothing; lets a client or a test check that both copies agree."""
    data = as_dict(params)
    try:
        uri = data["textDocument"]["uri"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{DOCUMENT_TEXT_REQUEST} expects {{textDocument: {{uri}}}}: {exc}") from exc
    try:
        document = ls.documents.get(uri)
    except DocumentError as exc:
        raise ValueError(str(exc)) from exc
    return {"uri": document.uri, "version": document.version, "languageId": document.language_id,
            "text": document.text}


@server.feature(ENGINE_STATS_REQUEST)
def engine_stats(ls: CodeLlamaServer, params: Any):
    """What the completion engine did (model calls, answers, cache hits), each cache's size against
    its bound, the process's memory, and the loaded engine's own status (``compiledDecode``,
    ``evaluatedTokens`` …): for benchmarks. ``{events: false}`` leaves the events out."""
    with_events = not (isinstance(data := as_dict(params), dict) and data.get("events") is False)
    loaded = ls.runtime.loaded
    return {"events": ls.engine.stats() if with_events else [],
            "caches": {**ls.context.cache_stats(), **ls.engine.cache_stats()}, "memory": process_memory(),
            "engine": loaded.backend.status().extra if loaded is not None else {}}


@server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(code_action_kinds=[
    types.CodeActionKind.Refactor, "refactor.codeLlama"]))
def code_action(ls: CodeLlamaServer, params: types.CodeActionParams):
    return ls.actions.code_actions(params)


def _register_command(name: str) -> None:
    async def run_command(ls: CodeLlamaServer, *args):
        return await ls.actions.command(name, list(args))

    server.command(name)(run_command)


for _name in COMMANDS:
    _register_command(_name)


@server.feature(EXPLAIN_REQUEST)
async def explain(ls: CodeLlamaServer, params: Any):
    """``{textDocument, range, question?}`` → ``{markdown}`` (streams codeLlama/partialResult)."""
    return await ls.actions.explain_request(params)


@server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
def progress_cancel(ls: CodeLlamaServer, params: types.WorkDoneProgressCancelParams) -> None:
    ls.actions.cancel_progress(params.token)


def serve_stdio() -> None:
    """LSP over stdio until the client's ``exit``, the end of stdin or Ctrl-C; then the process
    ends at once (see ``code_llama_ls.lifetime``)."""
    _end_process_on_exit()
    server.start_io()
    exit_now(0)


def serve_tcp(port: int) -> None:
    """LSP for one client on 127.0.0.1:``port``, until its ``exit``, its disconnection or Ctrl-C."""
    _end_process_on_exit()
    server.start_tcp("127.0.0.1", port)
    exit_now(0)


def _end_process_on_exit() -> None:
    """pygls answers ``exit`` with ``sys.exit`` inside the event loop, which over TCP prints a
    traceback and waits for the worker threads; end the process here first, with the status LSP
    asks for (0 after ``shutdown``, else 1)."""
    exit_on_interrupt()
    if types.EXIT not in server.protocol.fm.features:
        server.feature(types.EXIT)(lambda ls, params: exit_now(0 if ls.protocol._shutdown else 1))


__all__ = ["CodeLlamaServer", "server", "serve_stdio", "serve_tcp"]
