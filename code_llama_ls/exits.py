"""The commands' exit statuses, and the error that carries a message and its status up to the
command line, from any stage that knows the user can act on it."""

from __future__ import annotations

EXIT_OK = 0
EXIT_NOTHING = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_MODEL = 4
EXIT_STATUS_HELP = """exit status:
  0    done
  1    the model gave nothing usable: no suggestion (complete --verbose says why), an empty answer
  2    usage: a bad option, or a line, character or range outside the file
  3    the file: missing, not UTF-8 text, ignored or secret, too large, an unsupported language
  4    the model: it cannot be found or loaded, or its server failed
  130  interrupted (Ctrl-C)"""


class CliError(Exception):
    """One line for stderr, and the exit status that goes with it."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
