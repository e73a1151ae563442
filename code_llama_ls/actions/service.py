"""Explain, ask, docstring and tests: document → context → instruct prompt → backend → answer →
Markdown or one edit. Used by the language server and the command line alike.

Every bad input ends in an :class:`ActionError` whose message is shown to the user; nothing is
edited then.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from code_llama_ls.actions import docstrings, testfiles
from code_llama_ls.actions.edits import ActionEdit, FileChange
from code_llama_ls.actions.extract import NoCodeError, clean_docstring, extract_code
from code_llama_ls.actions.prompt import PromptTooLong, action_prompt, check_question
from code_llama_ls.actions.targets import LANGUAGE_LABELS, Target, target_at
from code_llama_ls.backends.base import BackendError, CancelToken, GenerationRequest
from code_llama_ls.runtime.manager import Runtime
from code_llama_ls.context.engine import ContextEngine
from code_llama_ls.documents import Document, document_path
from code_llama_ls.prompts.instruct import InstructPrompt, PromptRefused
from code_llama_ls.settings import Settings

log = logging.getLogger(__name__)
KINDS = ("explain", "ask", "docstring", "tests")
TITLES = {"explain": "Explaining code", "ask": "Answering", "docstring": "Writing a docstring",
          "tests": "Writing tests"}


class ActionError(Exception):
    """Shown to the user as is; no edit is made. The subclasses say what has to change (the
    command line maps them to exit statuses); this class itself: the file."""


class SelectionError(ActionError):
    """The cursor, selection or question does not fit the action (nothing there, too long)."""


class ModelError(ActionError):
    """The model could not be loaded, or failed while answering."""


class NoUsableAnswer(ActionError):
    """The model answered with nothing that can be shown or applied."""


class ActionCancelled(Exception):
    """The user stopped the generation."""


@dataclass
class ActionResult:
    kind: str
    answer: str  # the model's raw answer
    markdown: str = ""  # explain / ask
    edit: ActionEdit | None = None  # docstring / tests
    tokens: int = 0
    stop_reason: str = ""


def instruct_settings(settings: Settings) -> Settings:
    """The settings that load the instruct model (the completion model's, with ``instructModel``)."""
    if settings.instruct_model_name == settings.model:
        return settings
    return settings.model_copy(update={"model": settings.instruct_model_name, "tokenizer": None})


def target_for(kind: str, document: Document, start: int, end: int) -> Target | None:
    """The definition an action works on; tests fall back to the whole module."""
    target = target_at(document.language, document.text, document.tree, start, end)
    if target is None and kind == "tests" and document.language in testfiles.SUPPORTED:
        path = document_path(document.uri)
        return Target("module", path.stem, 0, len(document.text), 0, "module")
    return target


Reader = Callable[[Path], "str | None"]


@dataclass
class Prepared:
    """A checked action request: its prompt, the runtime that answers it, the document's text
    it was built from, and the definition it works on (docstring / tests)."""

    prompt: InstructPrompt
    runtime: Runtime
    text: str
    target: Target | None


class ActionService:
    def __init__(self, runtime: Callable[[], Awaitable[Runtime]], settings: Callable[[], Settings],
                 context: ContextEngine | None = None, roots: Callable[[], list[Path]] = lambda: [],
                 read: Reader | None = None) -> None:
        self._runtime = runtime
        self._settings = settings
        self.context = context
        self._roots = roots
        self._read = read or _read_disk

    async def prompt(self, kind: str, document: Document, start: int, end: int, *, question: str | None = None,
                     replace: bool = False, place: str | None = None) -> Prepared:
        """The checked request and its exact instruct prompt (``codeLlama/prompt`` shows it).

        ``place`` names ``start``–``end`` in messages as the caller's user knows it ("line 3 of
        add.py" on the command line); by default "the cursor" or "the selection"."""
        if kind not in KINDS:
            raise ActionError(f"unknown action {kind!r}")
        language = document.language
        place = place or ("the cursor" if start == end and kind in ("docstring", "tests") else "the selection")
        if self.context is not None and self.context.is_ignored(document.uri):
            raise ActionError(f"{self._path(document).name} matches an ignore rule or is a secret; "
                              "it is never sent to the model")
        text = document.text  # a snapshot: the document may change while the model answers
        target = None
        if kind in ("explain", "ask"):
            if start >= end or not text[start:end].strip():
                raise SelectionError(f"{place} holds no code to {kind}")
            if kind == "ask":
                try:
                    question = check_question(question)
                except PromptRefused as exc:
                    raise SelectionError(f"question refused: {exc}") from exc
                except ValueError as exc:
                    raise SelectionError(str(exc)) from exc
        else:
            supported = docstrings.SUPPORTED if kind == "docstring" else testfiles.SUPPORTED
            if language not in supported:
                label = document.language_id or language
                raise ActionError(f"{'docstrings' if kind == 'docstring' else 'tests'} are not supported for "
                                  f"{label} files (supported: {', '.join(sorted(set(LANGUAGE_LABELS.values())))})")
            target = target_for(kind, document, start, end)
            if target is None:
                raise SelectionError(f"no function, method or class at {place}")
            if kind == "docstring" and not replace and docstrings.existing_docstring(language, text, target):
                raise ActionError(f"{target.name} already has a docstring: {docstrings.REGENERATE}")
            start, end = target.start, target.end

        try:
            runtime = await self._runtime()
        except BackendError as exc:
            raise ModelError(f"model error: {exc}") from exc
        settings = self._settings()
        limit = runtime.capabilities.context_tokens(settings.context_tokens_for(runtime.backend.device_type)) \
            - settings.instruct_max_new_tokens
        module = self._module(document) if kind == "tests" and language == "python" else None
        try:
            prompt = action_prompt(runtime.tokenizer, kind, document, start, end, target=target, question=question,
                                   module=module, context=self.context, limit=max(limit, 1),
                                   chat_format=runtime.capabilities.chat_format)
        except PromptTooLong as exc:
            raise SelectionError(str(exc)) from exc
        except ValueError as exc:  # the model's chat template cannot hold this dialog
            raise ModelError(f"cannot build the instruct prompt: {exc}") from exc
        return Prepared(prompt, runtime, text, target)

    async def run(self, kind: str, document: Document, start: int, end: int, *, question: str | None = None,
                  replace: bool = False, cancel: CancelToken | None = None,
                  on_text: Callable[[str], None] = lambda text: None, place: str | None = None) -> ActionResult:
        cancel = cancel or CancelToken()
        prepared = await self.prompt(kind, document, start, end, question=question, replace=replace, place=place)
        prompt, runtime, text, target = prepared.prompt, prepared.runtime, prepared.text, prepared.target
        settings = self._settings()
        if settings.log_prompts:
            log.info("%s prompt for %s: %d ids", kind, document.uri, len(prompt.ids))

        started = time.perf_counter()
        answer, tokens, reason = "", 0, "max_tokens"
        request = GenerationRequest(prompt.ids, settings.instruct_max_new_tokens, settings.temperature,
                                    prompt.stop_ids or runtime.tokenizer.stop_ids(),
                                    messages=prompt.messages if settings.remote else ())
        try:
            async for chunk in runtime.backend.stream(request, cancel):
                answer += chunk.text
                tokens = chunk.tokens or tokens
                if chunk.stop_reason is not None:
                    reason = chunk.stop_reason
                if chunk.text:
                    on_text(answer.lstrip())
        except BackendError as exc:
            raise ModelError(f"model error: {exc}") from exc
        if reason == "cancelled":
            raise ActionCancelled(f"{kind} cancelled")
        log.info("%s: %d tokens in %.0f ms (%s)", kind, tokens, (time.perf_counter() - started) * 1000, reason)
        answer = answer.strip()
        result = ActionResult(kind, answer, tokens=tokens, stop_reason=reason)
        if kind in ("explain", "ask"):
            if not answer:
                raise NoUsableAnswer("the model gave an empty answer")
            result.markdown = answer
            return result
        try:
            if kind == "docstring":
                result.edit = self._docstring_edit(document, text, target, answer, replace)
            else:
                result.edit = self._tests_edit(document, text, target, answer)
        except NoCodeError as exc:
            raise NoUsableAnswer(f"no usable answer: {exc}; nothing was changed") from exc
        except (docstrings.DocstringError, testfiles.TestFileError) as exc:
            raise ActionError(str(exc)) from exc
        return result

    # -- edits ------------------------------------------------------------------------------------

    def _path(self, document: Document) -> Path:
        return document_path(document.uri)

    def _module(self, document: Document) -> str:
        path = self._path(document)
        return testfiles.python_module(path, testfiles.root_for(path, self._roots()))

    def _docstring_edit(self, document: Document, text: str, target: Target, answer: str, replace: bool) -> ActionEdit:
        doc = clean_docstring(answer)
        change = docstrings.docstring_change(document.language, text, target, doc, replace=replace)
        file = FileChange(self._path(document), text, [change], uri=document.uri, version=document.version)
        return ActionEdit(f"Docstring for {target.name}", [file], f"documented {target.name}")

    def _tests_edit(self, document: Document, text: str, target: Target, answer: str) -> ActionEdit:
        code = extract_code(answer, document.language)
        path = self._path(document)
        names = self._import_names(document, text, target)
        file = testfiles.test_file_change(document.language, path, text, code, names, self._roots(), self._read)
        if file.path == path:  # Rust: tests go into the file itself
            file.uri, file.version = document.uri, document.version
        verb = "created" if file.creates else "extended"
        return ActionEdit(f"Tests for {target.name}", [file], f"{verb} {file.path.name}")

    def _import_names(self, document: Document, text: str, target: Target) -> list[str]:
        if target.kind == "module":
            return []
        if target.kind == "method":
            owner = target_at(document.language, text, document.tree, max(target.anchor - 1, 0), max(target.anchor - 1, 0))
            return [owner.name] if owner is not None and owner.kind == "class" else []
        return [target.name]


def _read_disk(path: Path) -> str | None:
    """The file's text with its line breaks as they are (``read_text`` would turn CRLF into LF)."""
    try:
        return path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
