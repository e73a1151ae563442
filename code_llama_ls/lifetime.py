"""Ending the process promptly, for the language server and the command line alike.

A model loads, and pygls reads stdin, in worker threads that Python joins at exit: a client's
``exit``, Ctrl-C or a finished command would wait for a download, a load or a read that never
comes. These end the process without joining them.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import NoReturn

INTERRUPTED = 130
"""The exit status after Ctrl-C (128 + SIGINT), as shells report it."""


def exit_now(code: int) -> NoReturn:
    """Flush what was written, then end the process without waiting for worker threads."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, RuntimeError):  # closed, a broken pipe, or a write in progress
            pass
    os._exit(code)


def exit_on_interrupt() -> None:
    """Ctrl-C ends the process at once and quietly. A handler of our own also keeps asyncio from
    turning SIGINT into a cancellation that pygls would then wait out."""
    signal.signal(signal.SIGINT, lambda signum, frame: exit_now(INTERRUPTED))
