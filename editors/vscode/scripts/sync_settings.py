"""Writes every server setting into the extension's package.json as a `codeLlama.<key>` entry.

The entries come from the server's one settings model (code_llama_ls/settings.py: type, default,
choices, bounds, description), so the settings the extension offers and forwards cannot drift
from the server's. The extension's own settings (`codeLlama.server.*`,
`codeLlama.inlineCompletions.*`: a dot after `codeLlama.`) and `codeLlama.serverSettings` are
hand-written and kept as they are.

    python editors/vscode/scripts/sync_settings.py           # rewrite package.json
    python editors/vscode/scripts/sync_settings.py --check   # exit 1 if it is stale (a test runs this)

Run it from an environment where `code_llama_ls` is importable (pip install -e .).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from code_llama_ls.settings import Settings

PACKAGE_JSON = Path(__file__).resolve().parents[1] / "package.json"
SECTION = "codeLlama"
EXTRA_KEY = "serverSettings"
"""The object setting that passes server keys by name (hand-written; last in the list)."""

# JSON Schema keywords of the server's schema that VS Code's settings editor also understands.
SCHEMA_KEYWORDS = ("type", "enum", "items", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                   "minLength")


def is_extension_setting(key: str) -> bool:
    """`codeLlama.server.command` and the like: read by the extension, never sent to the server."""
    name = key.removeprefix(f"{SECTION}.")
    return "." in name or name == EXTRA_KEY


def server_entries() -> dict[str, dict[str, Any]]:
    """One `codeLlama.<camelKey>` entry per field of the server's settings model, in its order."""
    schema = Settings.model_json_schema(by_alias=True)["properties"]
    defaults = Settings().model_dump(by_alias=True, mode="json")
    entries = {}
    for key, prop in schema.items():
        # `X | None` is anyOf [X, null] in pydantic's schema; VS Code wants one type list.
        nullable = {"type": "null"} in prop.get("anyOf", [])
        if nullable:
            (prop_x,) = [branch for branch in prop["anyOf"] if branch != {"type": "null"}]
            prop = {**prop, **prop_x}
        entry: dict[str, Any] = {word: prop[word] for word in SCHEMA_KEYWORDS if word in prop}
        if nullable:
            entry["type"] = [entry["type"], "null"]
        entry["default"] = defaults[key]
        entry["markdownDescription"] = prop["description"]
        entries[f"{SECTION}.{key}"] = entry
    return entries


def synced(manifest: dict) -> dict:
    """``manifest`` with its server entries regenerated: the extension's own settings first, as
    they are, then every server setting, then `codeLlama.serverSettings`."""
    properties = manifest["contributes"]["configuration"]["properties"]
    own = {key: value for key, value in properties.items() if is_extension_setting(key)}
    generated = server_entries()
    clash = sorted(set(own) & set(generated))
    if clash:
        raise SystemExit(f"server settings {clash} collide with the extension's own settings")
    extra_name = f"{SECTION}.{EXTRA_KEY}"
    ordered = {key: value for key, value in own.items() if key != extra_name}
    ordered.update(generated)
    ordered[extra_name] = own[extra_name]
    manifest["contributes"]["configuration"]["properties"] = ordered
    return manifest


def render(manifest: dict) -> str:
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report whether package.json is stale")
    args = parser.parse_args(argv)
    current = PACKAGE_JSON.read_text()
    wanted = render(synced(json.loads(current)))
    if current == wanted:
        return 0
    if args.check:
        print(f"{PACKAGE_JSON} is stale: run python {Path(__file__).relative_to(PACKAGE_JSON.parents[2])}",
              file=sys.stderr)
        return 1
    PACKAGE_JSON.write_text(wanted)
    print(f"wrote {len(server_entries())} server settings into {PACKAGE_JSON}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
