"""Command-line options made from the settings model: each option's type, choices, default and
help come from its ``Settings`` field, so a default is written once, in ``settings.py``.

A command names the fields it takes; its options parse into attributes of the same names, and
``settings_from`` turns them back into a ``Settings``.
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from code_llama_ls.settings import Settings

FLAGS = {"request_timeout_s": "--request-timeout", "ca_cert_path": "--ca-cert"}
"""Options spelt otherwise than their field (``--flag-from-field-name`` is the rule)."""

MODEL = ("model", "tokenizer", "max_context_tokens", "max_new_tokens", "fim_mode", "infilling", "device",
         "local_files_only")
"""What the completion commands (``complete``, ``prompt``, ``eval``) load and ask."""
REMOTE = ("backend", "url", "api_key_env", "prompt_format", "request_timeout_s", "ca_cert_path")
"""Trying a remote inference server from a shell."""


def flag(name: str) -> str:
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def add_settings_options(parser: argparse.ArgumentParser, fields: Iterable[str], *,
                         flags: Mapping[str, str] | None = None, helps: Mapping[str, str] | None = None,
                         defaults: Mapping[str, Any] | None = None) -> None:
    """An option for each of ``fields``, stored under the field's name. ``flags``, ``helps`` and
    ``defaults`` change a command's spelling, wording or default of an option."""
    flags, helps, defaults = flags or {}, helps or {}, defaults or {}
    for name in fields:
        field = Settings.model_fields[name]
        default = defaults.get(name, field.get_default(call_default_factory=True))
        help_text = helps.get(name) or _help(field.description or "", default)
        option: dict[str, Any] = {"dest": name, "default": default, "help": help_text}
        kind, choices = _kind(field.annotation)
        if kind is bool:
            option["action"] = argparse.BooleanOptionalAction if default else "store_true"
        else:
            option["type"] = kind
            if choices:
                option["choices"] = choices
        parser.add_argument(flags.get(name, flag(name)), **option)


def settings_from(args: argparse.Namespace, **fixed: Any) -> Settings:
    """The settings the command's options give (the fields it has no option for keep their
    defaults), with ``fixed`` values on top."""
    given = {name: getattr(args, name) for name in Settings.model_fields if hasattr(args, name)}
    return Settings(**{**given, **fixed})


def _kind(annotation: Any) -> tuple[type, list[str] | None]:
    """The option's type (the non-None member of an optional field) and a Literal's choices."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(member for member in typing.get_args(annotation) if member is not type(None))
    if typing.get_origin(annotation) is Literal:
        choices = list(typing.get_args(annotation))
        return type(choices[0]), choices
    return annotation, None


def _help(description: str, default: Any) -> str:
    text = description.replace("%", "%%")  # argparse formats help with %
    if default is None or isinstance(default, bool):
        return text
    return f"{text} (default: %(default)s)"
