"""What the shell commands share: reading the file, turning ``--line``, ``--character`` and
``--range`` into offsets (0-based, checked, in one wording), and the exit status of each failure
(the statuses themselves: ``code_llama_ls.exits``).

Paths are shown as they were typed, never as URIs.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from code_llama_ls.documents import Document, Position
from code_llama_ls.exits import EXIT_INPUT, EXIT_MODEL, EXIT_NOTHING, EXIT_USAGE, CliError
from code_llama_ls.settings import Settings

if TYPE_CHECKING:
    from code_llama_ls.context.engine import ContextEngine
    from code_llama_ls.runtime.manager import RuntimeEvents


def read_document(path: Path) -> Document:
    """The file as a document, or a CliError that names it and says what is wrong."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CliError(f"{path}: no such file", EXIT_INPUT) from None
    except IsADirectoryError:
        raise CliError(f"{path} is a folder, not a file", EXIT_INPUT) from None
    except PermissionError:
        raise CliError(f"{path}: permission denied", EXIT_INPUT) from None
    except OSError as exc:
        raise CliError(f"{path}: cannot read it ({exc.strerror or exc})", EXIT_INPUT) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(f"{path} is not a UTF-8 text file (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                       EXIT_INPUT) from None
    if "\0" in text:
        raise CliError(f"{path} is not a UTF-8 text file (it holds NUL bytes)", EXIT_INPUT)
    return Document(uri=path.resolve().as_uri(), text=text, version=0)


def repository_root(file: Path) -> Path:
    """The nearest folder above ``file`` with a ``.git``, else the file's folder."""
    folder = file.resolve().parent
    return next((p for p in (folder, *folder.parents) if (p / ".git").exists()), folder)


def context_for(file: Path, settings: Settings) -> ContextEngine:
    """A context engine rooted at the file's repository, as an editor's workspace would be
    (imported here, not at start-up: every command builds the parser, few need the engine)."""
    from code_llama_ls.context.engine import ContextEngine
    from code_llama_ls.documents import DocumentStore

    return ContextEngine(lambda: settings, DocumentStore(), [repository_root(file)])


def say(*parts: object) -> None:
    """Progress and messages go to stderr: stdout holds only the command's result."""
    print(*parts, file=sys.stderr)


def loading_events(show: Callable[..., None] = say, progress: bool = True) -> RuntimeEvents:
    """How a command shows its model loading: the title, then each progress message unless
    ``progress`` is off. A failed load is not shown here: it reaches the command as an
    exception, which ``main`` prints once."""
    from code_llama_ls.runtime.manager import RuntimeEvents

    def report(message: str, percentage: int | None) -> None:
        if progress:
            show(message)

    return RuntimeEvents(status=lambda state, message: None, progress_begin=show, progress_report=report,
                         progress_end=lambda message: None, error=lambda message: None)


def _lines(document: Document) -> str:
    last = document.line_count - 1
    return "only line 0" if last == 0 else f"lines 0–{last}"


def line_start(document: Document, path: Path, line: int) -> int:
    """The offset where 0-based ``line`` starts; lines never count from the end."""
    if line < 0:
        raise CliError(f"line {line} is negative: lines count from 0 ({path} has {_lines(document)})", EXIT_USAGE)
    if line >= document.line_count:
        raise CliError(f"line {line} is past the end of {path} ({_lines(document)})", EXIT_USAGE)
    return document.line_range(line)[0]


def position_offset(document: Document, path: Path, line: int, character: int) -> int:
    """The offset of 0-based ``line``:``character`` (UTF-16 code units, as in LSP), inside the file."""
    line_start(document, path, line)
    width = document.position_at(document.line_range(line)[1]).character
    if not 0 <= character <= width:
        raise CliError(f"character {character} is outside line {line} of {path} (characters 0–{width})",
                       EXIT_USAGE)
    return document.offset_at(Position(line, character))


def range_offsets(document: Document, path: Path, spec: str) -> tuple[int, int]:
    """The offsets of ``L1:C1-L2:C2``, start first."""
    match = re.fullmatch(r"\s*(\d+):(\d+)\s*-\s*(\d+):(\d+)\s*", spec)
    if match is None:
        raise CliError(f"--range {spec!r} must look like L1:C1-L2:C2 (0-based), e.g. 0:0-2:0", EXIT_USAGE)
    l1, c1, l2, c2 = map(int, match.groups())
    if (l2, c2) < (l1, c1):
        raise CliError(f"--range {spec} is reversed: it ends at {l2}:{c2}, before its start {l1}:{c1}", EXIT_USAGE)
    return position_offset(document, path, l1, c1), position_offset(document, path, l2, c2)


def exit_status(exc: BaseException) -> int | None:
    """The exit status of a failure the user can act on; None for a bug (its traceback is shown)."""
    from code_llama_ls.actions.service import ActionError, ModelError, NoUsableAnswer, SelectionError
    from code_llama_ls.backends.base import BackendError
    from code_llama_ls.completion.engine import CompletionSkipped
    from code_llama_ls.model_files import ModelFileError
    from code_llama_ls.prompts.tokenization import TokenizerError

    if isinstance(exc, CliError):
        return exc.status
    statuses = ((ModelError, EXIT_MODEL), (NoUsableAnswer, EXIT_NOTHING), (SelectionError, EXIT_USAGE),
                (ActionError, EXIT_INPUT), (CompletionSkipped, EXIT_INPUT), (BackendError, EXIT_MODEL),
                (TokenizerError, EXIT_MODEL), (ModelFileError, EXIT_MODEL))
    return next((status for kind, status in statuses if isinstance(exc, kind)), None)
