"""Which files may never reach a prompt.

Three sources, all in gitignore syntax: a built-in deny-list of secrets, the workspace's
``.gitignore`` and ``.codellamaignore`` files (at the root and in subfolders), and the
``ignorePatterns`` setting. An ignored file is never read into context and gets no completions.
"""

from __future__ import annotations

from pathlib import Path

import pathspec

from code_llama_ls.memory import Lru

SECRET_PATTERNS = (
    ".env", ".env.*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".netrc", ".npmrc", ".pypirc",
    ".git-credentials", "credentials", "credentials.json", "*.credentials", "secrets.json", "secrets.yaml",
    "secrets.yml", "secrets.toml",
    ".aws/", ".ssh/", ".gnupg/", "*.kdbx", ".htpasswd",
)
IGNORE_FILES = (".gitignore", ".codellamaignore")


def _spec(lines: list[str] | tuple[str, ...]) -> pathspec.PathSpec:
    return pathspec.GitIgnoreSpec.from_lines(lines)


_SECRETS = _spec(SECRET_PATTERNS)


IGNORE_FILE_SPECS: Lru[tuple[Path, int], pathspec.PathSpec | None] = Lru(256)
"""Parsed ignore files by (path, mtime); the context engine sets the bound (``contextCacheEntries``)."""


def _ignore_file(path: Path, mtime_ns: int) -> pathspec.PathSpec | None:
    key = (path, mtime_ns)
    if key in IGNORE_FILE_SPECS:
        return IGNORE_FILE_SPECS.get(key)
    try:
        spec = _spec(path.read_text(encoding="utf-8", errors="replace").splitlines())
    except OSError:
        spec = None
    IGNORE_FILE_SPECS.put(key, spec)
    return spec


class IgnoreRules:
    def __init__(self, roots: list[Path], extra_patterns: list[str] | tuple[str, ...] = ()) -> None:
        self.roots = [root.resolve() for root in roots]
        self._extra = _spec(list(extra_patterns))

    def is_ignored(self, path: Path) -> bool:
        """True for secrets, for files matched by any ignore file above them in the workspace,
        and for files matching the user's patterns."""
        path = path.resolve() if path.is_absolute() else path
        name = path.name
        if _SECRETS.match_file(name) or any(_SECRETS.match_file(part + "/") for part in path.parts[:-1]):
            return True
        root = next((r for r in self.roots if path.is_relative_to(r)), None)
        relative = path.relative_to(root).as_posix() if root else name
        if self._extra.match_file(relative) or self._extra.match_file(name):
            return True
        if root is None:
            return False
        folder = path.parent
        while True:
            for ignore_name in IGNORE_FILES:
                ignore_file = folder / ignore_name
                try:
                    mtime = ignore_file.stat().st_mtime_ns
                except OSError:
                    continue
                spec = _ignore_file(ignore_file, mtime)
                if spec is not None and spec.match_file(path.relative_to(folder).as_posix()):
                    return True
            if folder == root or folder.parent == folder:
                return False
            folder = folder.parent
