"""The text form of a prompt (for servers that take text only) tokenizes back to the same ids
under the model's own tokenizer (what TGI and vLLM run), on many real prompts."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from code_llama_ls.backends.remote_prompt import prompt_text, stop_strings
from code_llama_ls.prompts.fim import Budget, build_infill_prompt
from code_llama_ls.prompts.instruct import Message, build_instruct_prompt

STDLIB = Path(sysconfig.get_paths()["stdlib"])
FILES = ["textwrap.py", "json/encoder.py", "csv.py", "difflib.py", "shlex.py"]


def cases():
    for name in FILES:
        text = (STDLIB / name).read_text(encoding="utf-8")
        for fraction in (0.1, 0.33, 0.5, 0.77, 0.95):
            offset = int(len(text) * fraction)
            yield name, offset, text


@pytest.fixture(scope="module")
def hf(tokenizer_dir):
    """The tokenizer as a server runs it: specials parsed, BOS added."""
    return Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))


@pytest.mark.parametrize("mode", ["psm", "spm"])
def test_infilling_prompts_round_trip_through_text(tokenizer, hf, mode):
    checked = 0
    for name, offset, text in cases():
        if not (STDLIB / name).is_file():
            continue
        # Odd offsets land inside words and indentation too.
        for shift in (0, 1, 7):
            at = min(offset + shift, len(text))
            prompt = build_infill_prompt(tokenizer, text[:at], text[at:], Budget(1024, 64), mode)
            sent = prompt_text(tokenizer, prompt.ids)
            assert hf.encode(sent).ids == prompt.ids, (name, at, mode)
            checked += 1
    assert checked >= 30


def test_instruct_prompt_round_trips_through_text(tokenizer, hf):
    dialog = [Message("system", "You are an expert programmer."),
              Message("user", "Explain this code:\n```python\n    def f(x):\n        return x  # <PRE> ▁<SUF>\n```")]
    prompt = build_instruct_prompt(tokenizer, dialog)
    assert hf.encode(prompt_text(tokenizer, prompt.ids)).ids == prompt.ids


def test_stop_strings(tokenizer):
    assert stop_strings(tokenizer, tokenizer.stop_ids()) == [" <EOT>", "</s>", "<EOT>"]
