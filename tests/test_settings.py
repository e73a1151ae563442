"""Settings: defaults, camelCase on the wire, key-by-key merging, the README table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from code_llama_ls.settings import (
    CPU_CONTEXT_TOKENS,
    DEFAULT_MODEL,
    GPU_CONTEXT_TOKENS,
    Settings,
    merge_settings,
    settings_table,
)

README = Path(__file__).resolve().parents[1] / "README.md"
TABLE_HEADER = "| key | type | default |"


def test_defaults():
    settings = Settings()
    assert settings.model == DEFAULT_MODEL
    assert settings.tokenizer is None and settings.tokenizer_name == DEFAULT_MODEL
    assert settings.instruct_model_name == DEFAULT_MODEL
    assert settings.backend == "transformers"
    assert settings.device == "auto" and settings.dtype == "auto"
    assert settings.max_context_tokens is None
    assert settings.max_new_tokens == 128
    assert settings.fim_mode == "auto"
    assert settings.prefix_ratio == 0.75
    assert settings.temperature == 0.0
    assert settings.enabled_languages == ["*"]
    assert settings.ignore_patterns == []
    assert settings.local_files_only is False and settings.log_prompts is False


def test_camel_case_aliases_on_the_wire():
    settings = Settings.model_validate({"maxNewTokens": 7, "localFilesOnly": True, "fimMode": "spm",
                                        "ignorePatterns": ["*.secret.py"], "instructModel": "m"})
    assert settings.max_new_tokens == 7 and settings.local_files_only and settings.fim_mode == "spm"
    assert settings.ignore_patterns == ["*.secret.py"] and settings.instruct_model_name == "m"
    dumped = settings.model_dump(by_alias=True)
    assert set(dumped) == {to_camel(name) for name in Settings.model_fields}
    assert dumped["maxNewTokens"] == 7
    # Python names work too (populate_by_name), and unknown keys are refused.
    assert Settings(max_new_tokens=3).max_new_tokens == 3
    with pytest.raises(ValidationError):
        Settings.model_validate({"noSuchKey": 1})


@pytest.mark.parametrize("value, ok", [
    ("auto", True), ("cpu", True), ("cuda", True), ("cuda:1", True), ("mps", True),
    ("cuda:x", False), ("mps:0", False), ("tpu", False), ("", False),
])
def test_device_values(value, ok):
    if ok:
        assert Settings(device=value).device == value
    else:
        with pytest.raises(ValidationError):
            Settings(device=value)


def test_merge_applies_good_keys():
    current = Settings()
    merged, warnings = merge_settings(current, {"maxNewTokens": 16, "model": "/models/x", "temperature": 0.2})
    assert warnings == []
    assert merged.max_new_tokens == 16 and merged.model == "/models/x" and merged.temperature == 0.2
    assert current.max_new_tokens == 128, "the previous settings object is not changed"


def test_merge_keeps_previous_values_on_bad_keys_with_one_warning_each():
    current, _ = merge_settings(Settings(), {"maxNewTokens": 32, "prefixRatio": 0.5, "fimMode": "spm"})
    merged, warnings = merge_settings(current, {
        "maxNewTokens": -5,
        "noSuchKey": 1,
        "prefixRatio": "x",
        "fimMode": "middle-out",
        "device": "tpu",
        "enabledLanguages": "python",
        "model": "",
        "temperature": 0.5,  # good keys in the same update are still applied
    })
    assert len(warnings) == 7, warnings
    for key in ("maxNewTokens", "noSuchKey", "prefixRatio", "fimMode", "device", "enabledLanguages", "model"):
        assert sum(f"codeLlama.{key}" in w for w in warnings) == 1, (key, warnings)
    assert "unknown" in next(w for w in warnings if "noSuchKey" in w)
    assert merged.max_new_tokens == 32 and merged.prefix_ratio == 0.5 and merged.fim_mode == "spm"
    assert merged.device == "auto" and merged.enabled_languages == ["*"] and merged.model == DEFAULT_MODEL
    assert merged.temperature == 0.5


@pytest.mark.parametrize("changes", ["maxNewTokens=5", 5, ["maxNewTokens", 5], True])
def test_merge_of_non_object_is_one_warning(changes):
    current = Settings(max_new_tokens=9)
    merged, warnings = merge_settings(current, changes)
    assert merged == current
    assert len(warnings) == 1 and "object" in warnings[0]


def test_merge_of_nothing_is_silent():
    current = Settings()
    assert merge_settings(current, None) == (current, [])
    assert merge_settings(current, {}) == (current, [])


def test_context_tokens_by_device():
    assert Settings().context_tokens_for("cpu") == CPU_CONTEXT_TOKENS == 4096
    assert Settings().context_tokens_for("cuda") == GPU_CONTEXT_TOKENS == 16384
    assert Settings().context_tokens_for("mps") == GPU_CONTEXT_TOKENS
    assert Settings(max_context_tokens=1000).context_tokens_for("cpu") == 1000
    assert Settings(max_context_tokens=1000).context_tokens_for("cuda") == 1000
    with pytest.raises(ValidationError):
        Settings(max_context_tokens=10)


def test_generated_table_lists_every_key():
    table = settings_table()
    assert table.splitlines()[0].startswith(TABLE_HEADER)
    for name in Settings.model_fields:
        assert f"| `{to_camel(name)}` |" in table


def test_generated_table_rows_have_four_cells():
    """A '|' inside a cell (``str | None``) must be escaped, or Markdown splits the cell."""
    for row in settings_table().splitlines():
        cells = re.split(r"(?<!\\)\|", row.strip())[1:-1]
        assert len(cells) == 4, row


def test_readme_table_lists_every_setting():
    if not README.is_file() or TABLE_HEADER not in README.read_text(encoding="utf-8"):
        pytest.skip(f"README.md has no settings table ({TABLE_HEADER!r}) yet")
    text = README.read_text(encoding="utf-8")
    table = text[text.index(TABLE_HEADER):].split("\n\n", 1)[0]
    keys = set(re.findall(r"^\|\s*`([A-Za-z]+)`\s*\|", table, flags=re.MULTILINE))
    missing = {to_camel(name) for name in Settings.model_fields} - keys
    assert not missing, f"README settings table lacks {sorted(missing)}"
