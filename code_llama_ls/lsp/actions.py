"""The actions over LSP: code actions, commands, ``codeLlama/explain``, progress, partial
results, cancellation and ``workspace/applyEdit``. The server's handlers call these; they reach
the client through the server's small ``ActionHost`` interface."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Protocol

from lsprotocol import types

from code_llama_ls.actions import docstrings
from code_llama_ls.actions.edits import ActionEdit
from code_llama_ls.actions.service import TITLES, ActionCancelled, ActionError, ActionService, target_for
from code_llama_ls.backends.base import CancelToken
from code_llama_ls.documents import Document, DocumentError, DocumentStore, Encoding, PositionError
from code_llama_ls.lsp.convert import as_dict, lsp_range, offsets

log = logging.getLogger(__name__)
COMMANDS = {"codeLlama.explain": "explain", "codeLlama.ask": "ask", "codeLlama.generateDocstring": "docstring",
            "codeLlama.generateTests": "tests"}
EXPLAIN_REQUEST = "codeLlama/explain"
PARTIAL_NOTIFICATION = "codeLlama/partialResult"
PARTIAL_INTERVAL_S = 0.1
PARTIAL_MAX_WAIT_S = 1.0
PROGRESS_INTERVAL_S = 0.5
CURRENT_REQUEST: ContextVar = ContextVar("code_llama_current_request", default=None)
"""The JSON-RPC id of the request being handled; set by the server's protocol so that a
``$/cancelRequest`` reaches a command handler that pygls runs as a separate task."""


class PartialStream:
    """An answer being written, sent as ``codeLlama/partialResult`` ``{token, delta, done}``: the
    text added since the last message, at most one message per ``PARTIAL_INTERVAL_S``, and only once
    the new text is twice the message around it or ``PARTIAL_MAX_WAIT_S`` has passed — so streaming
    costs about 1.5 times the answer's bytes, not its square. The last message has ``done: true``."""

    def __init__(self, notify: Callable[[dict], None], token: str, clock: Callable[[], float] = time.monotonic):
        self._notify, self._token, self._clock = notify, token, clock
        self._sent = ""
        self._last = float("-inf")
        self._overhead = len(json.dumps({"token": token, "delta": "", "done": False}))

    def update(self, text: str) -> bool:
        """The answer so far (it only grows); True when a message went out."""
        now = self._clock()
        waited = now - self._last
        pending = self._delta(text)
        if not pending or waited < PARTIAL_INTERVAL_S:
            return False
        if len(pending.encode()) < 2 * self._overhead and waited < PARTIAL_MAX_WAIT_S:
            return False
        self._send(text, done=False)
        self._last = now
        return True

    def finish(self, text: str) -> None:
        self._send(text, done=True)

    def _delta(self, text: str) -> str:
        """What ``text`` adds to what was sent (nothing when the final answer lost trailing spaces)."""
        return text[len(self._sent):] if text.startswith(self._sent) else ""

    def _send(self, text: str, done: bool) -> None:
        delta = self._delta(text)
        self._sent += delta
        self._notify({"token": self._token, "delta": delta, "done": done})


class ActionHost(Protocol):
    """What the actions need of the language server."""

    documents: DocumentStore

    @property
    def position_encoding(self) -> Encoding: ...

    def context_roots(self) -> list[Path]: ...

    def notify(self, method: str, params: Any) -> None: ...

    def show(self, message: str, kind: types.MessageType) -> None:
        """Shown to the user, and logged."""

    async def begin_progress(self, token: str, begin: types.WorkDoneProgressBegin) -> bool:
        """A progress bar, where the client takes one."""

    def report_progress(self, token: str, report: types.WorkDoneProgressReport) -> None: ...

    def end_progress(self, token: str, end: types.WorkDoneProgressEnd) -> None: ...

    async def apply_edit(self, params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult: ...


class ActionsLsp:
    def __init__(self, host: ActionHost, service: ActionService) -> None:
        self.host = host
        self.service = service
        self._by_progress: dict[str, CancelToken] = {}
        self._by_request: dict[Any, CancelToken] = {}

    # -- positions --------------------------------------------------------------------------------

    def _offsets(self, document: Document, range_: types.Range) -> tuple[int, int]:
        return offsets(document, range_, self.host.position_encoding)

    def _range(self, document: Document, start: int, end: int) -> types.Range:
        return lsp_range(document, start, end, self.host.position_encoding)

    # -- code actions -----------------------------------------------------------------------------

    def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        try:
            document = self.host.documents.get(uri)
            start, end = self._offsets(document, params.range)
        except (DocumentError, PositionError):
            return []
        rng = _plain_range(params.range)
        actions: list[types.CodeAction] = []
        target = target_for("docstring", document, start, end)
        has_selection = end > start and document.text[start:end].strip()
        explain_range = rng if has_selection else (
            _plain_range(self._range(document, target.start, target.end)) if target is not None else None)
        if explain_range is not None:
            actions.append(_action("Code Llama: Explain this code", "refactor.codeLlama.explain",
                                   "codeLlama.explain", [uri, explain_range]))
            # The shims complete the command with the question they collect.
            actions.append(_action("Code Llama: Ask about this code", "refactor.codeLlama.ask",
                                   "codeLlama.ask", [uri, explain_range]))
        if target is not None and document.language in docstrings.SUPPORTED:
            exists = docstrings.existing_docstring(document.language, document.text, target) is not None
            title = f"Code Llama: {'Regenerate' if exists else 'Generate'} docstring for {target.name}"
            arguments: list[Any] = [uri, rng] + ([{"replace": True}] if exists else [])
            actions.append(_action(title, "refactor.codeLlama.docstring", "codeLlama.generateDocstring", arguments))
        tests_target = target_for("tests", document, start, end)
        if tests_target is not None:
            actions.append(_action(f"Code Llama: Generate tests for {tests_target.name}", "refactor.codeLlama.tests",
                                   "codeLlama.generateTests", [uri, rng]))
        return actions

    # -- commands and requests --------------------------------------------------------------------

    async def command(self, name: str, arguments: list[Any]) -> Any:
        kind = COMMANDS[name]
        try:
            uri, range_, question, replace = _parse_arguments(kind, arguments)
        except (TypeError, ValueError, KeyError) as exc:
            self.host.show(f"{name}: {exc}", types.MessageType.Error)
            return {"error": str(exc)}
        return await self.run(kind, uri, range_, question, replace, show_errors=True)

    async def explain_request(self, params: Any) -> dict:
        data = as_dict(params)
        try:
            uri = data["textDocument"]["uri"]
            range_ = _range_from(data["range"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{EXPLAIN_REQUEST} expects {{textDocument, range, question?}}: {exc}") from exc
        question = data.get("question")
        result = await self.run("ask" if question else "explain", uri, range_, question, False, show_errors=False)
        if "error" in result:
            raise ValueError(result["error"])
        return {"markdown": result.get("markdown", "")}

    async def prompt_request(self, data: dict) -> dict:
        """``codeLlama/prompt`` with ``action``: the exact instruct prompt that action would send."""
        try:
            kind, uri, range_ = data["action"], data["textDocument"]["uri"], _range_from(data["range"])
            document = self.host.documents.get(uri)
            start, end = self._offsets(document, range_)
            prepared = await self.service.prompt(kind, document, start, end, question=data.get("question"))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"codeLlama/prompt with an action expects {{action, textDocument, range, question?}}: "
                             f"{exc}") from exc
        except (DocumentError, PositionError, ActionError) as exc:
            raise ValueError(str(exc)) from exc
        prompt = prepared.prompt
        return {"ids": prompt.ids, "format": prompt.format, "stopIds": sorted(prompt.stop_ids),
                "messages": [{"role": role, "content": content} for role, content in prompt.messages]}

    async def run(self, kind: str, uri: str, range_: types.Range, question: str | None, replace: bool,
                  show_errors: bool) -> dict:
        try:
            document = self.host.documents.get(uri)
            start, end = self._offsets(document, range_)
        except (DocumentError, PositionError) as exc:
            if show_errors:
                self.host.show(f"Code Llama: {exc}", types.MessageType.Error)
            return {"error": str(exc)}
        cancel = CancelToken()
        token = f"code-llama-{kind}-{uuid.uuid4()}"
        progress = await self.host.begin_progress(token, types.WorkDoneProgressBegin(
            title=f"Code Llama: {TITLES[kind]}", cancellable=True))
        self._by_progress[token] = cancel
        request_id = CURRENT_REQUEST.get()
        if request_id is not None:
            self._by_request[request_id] = cancel
        stream = PartialStream(lambda params: self.host.notify(PARTIAL_NOTIFICATION, params), token)
        last_report = [0.0]

        def on_text(text: str) -> None:
            if not stream.update(text) or not progress:
                return
            now = time.monotonic()
            if now - last_report[0] >= PROGRESS_INTERVAL_S:
                last_report[0] = now
                lines = [line for line in text.splitlines() if line.strip()]
                self.host.report_progress(token, types.WorkDoneProgressReport(
                    message=(lines[-1][:60] if lines else "…"), cancellable=True))

        outcome = "failed"
        try:
            result = await self.service.run(kind, document, start, end, question=question, replace=replace,
                                            cancel=cancel, on_text=on_text)
            stream.finish(result.answer)
            if result.edit is None:
                outcome = "done"
                return {"markdown": result.markdown}
            applied, reason = await self.apply(result.edit)
            outcome = "applied" if applied else "not applied"
            if not applied:
                message = f"Code Llama: the edit was not applied{': ' + reason if reason else ''}"
                self.host.show(message, types.MessageType.Warning)
                return {"applied": False, "error": message}
            return {"applied": True, "message": result.edit.message}
        except ActionCancelled:
            outcome = "cancelled"
            return {"cancelled": True}
        except asyncio.CancelledError:  # $/cancelRequest: stop generating within one step
            outcome = "cancelled"
            cancel.cancel()
            raise
        except ActionError as exc:
            message = f"Code Llama: {exc}"
            if show_errors:
                self.host.show(message, types.MessageType.Error if str(exc).startswith("model error")
                               else types.MessageType.Warning)
            return {"error": str(exc)}
        finally:
            cancel.cancel()
            self._by_progress.pop(token, None)
            if request_id is not None:
                self._by_request.pop(request_id, None)
            if progress:
                self.host.end_progress(token, types.WorkDoneProgressEnd(message=outcome))

    def cancel_request(self, msg_id: Any) -> None:
        cancel = self._by_request.get(msg_id)
        if cancel is not None:
            cancel.cancel()

    def cancel_progress(self, token: Any) -> None:
        cancel = self._by_progress.get(str(token))
        if cancel is not None:
            cancel.cancel()

    # -- edits ------------------------------------------------------------------------------------

    def workspace_edit(self, edit: ActionEdit) -> types.WorkspaceEdit:
        changes: list[Any] = []
        for file in edit.files:
            uri = file.uri or file.path.as_uri()
            if file.creates:
                changes.append(types.CreateFile(uri=uri, options=types.CreateFileOptions(overwrite=False,
                                                                                          ignore_if_exists=True)))
                new = file.new_text()
                changes.append(types.TextDocumentEdit(
                    text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=None),
                    edits=[types.TextEdit(range=types.Range(types.Position(0, 0), types.Position(0, 0)), new_text=new)]))
                continue
            original = file.original or ""
            version = file.version
            if version is None and uri in self.host.documents:
                version = self.host.documents.get(uri).version
            snapshot = Document(uri=uri, text=original, version=0)
            edits = [types.TextEdit(range=self._range(snapshot, c.start, c.end), new_text=c.text)
                     for c in sorted(file.changes, key=lambda c: c.start)]
            changes.append(types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version), edits=edits))
        return types.WorkspaceEdit(document_changes=changes)

    async def apply(self, edit: ActionEdit) -> tuple[bool, str]:
        roots = self.host.context_roots()
        for file in edit.files:
            if file.creates and not any(file.path.is_relative_to(r) for r in roots):
                return False, f"{file.path} is outside the workspace"
            if file.uri and file.uri in self.host.documents and file.version is not None \
                    and self.host.documents.get(file.uri).version != file.version:
                return False, "the document changed while the model was answering; run the action again"
        response = await self.host.apply_edit(
            types.ApplyWorkspaceEditParams(edit=self.workspace_edit(edit), label=edit.label))
        return bool(response.applied), response.failure_reason or ""

def _action(title: str, kind: str, command: str, arguments: list[Any]) -> types.CodeAction:
    return types.CodeAction(title=title, kind=kind, command=types.Command(title=title, command=command,
                                                                            arguments=arguments))


def _plain_range(range_: types.Range) -> dict:
    return {"start": {"line": range_.start.line, "character": range_.start.character},
            "end": {"line": range_.end.line, "character": range_.end.character}}


def _range_from(data: Any) -> types.Range:
    data = as_dict(data)
    if isinstance(data, types.Range):
        return data
    return types.Range(types.Position(int(data["start"]["line"]), int(data["start"]["character"])),
                       types.Position(int(data["end"]["line"]), int(data["end"]["character"])))


def _parse_arguments(kind: str, arguments: list[Any]) -> tuple[str, types.Range, str | None, bool]:
    arguments = [as_dict(a) for a in (arguments or [])]
    if len(arguments) < 2 or not isinstance(arguments[0], str):
        raise ValueError("expected arguments [uri, range" + (", question]" if kind == "ask" else "]"))
    question, replace = None, False
    extra = arguments[2:]
    if kind == "ask":
        if not extra or not isinstance(extra[0], str) or not extra[0].strip():
            raise ValueError("codeLlama.ask needs a question as its third argument")
        question = extra[0]
    elif extra and isinstance(extra[0], dict):
        replace = bool(extra[0].get("replace"))
    return arguments[0], _range_from(arguments[1]), question, replace
