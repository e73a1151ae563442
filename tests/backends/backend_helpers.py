"""Helpers shared by the remote-backend tests (a module of its own: ``conftest`` is not importable
by name once several test folders have one)."""

from __future__ import annotations

from code_llama_ls.backends.http import RemoteOptions


def options(url: str, **changes) -> RemoteOptions:
    """Remote options for tests: model ``m``, a 5 s timeout and no retries unless changed."""
    base = dict(url=url, model="m", timeout_s=5.0, max_retries=0)
    base.update(changes)
    return RemoteOptions(**base)
