"""A real pretrained model through the real language server over stdio: SmolLM2-135M-Instruct
(a byte-level BPE vocabulary, a ChatML template, no infilling), loaded from its GGUF file.

Completions are compared with what plain transformers gives on the same prompt ids — greedy
``generate`` until a stop token or ``maxNewTokens``, then the one shaping entry point — computed
here, not pinned: the server's own decoding loop, its left-to-right prompt, its early stop at
the unit's end and its shaping must add up to exactly that. Explain and docstring answer from the
ChatML prompt, whose ids are ``apply_chat_template``'s.
"""

from __future__ import annotations

import ast
import asyncio

import torch

from benchmarks.lsp_window import Window, end_of
from code_llama_ls.completion.cache import heal
from code_llama_ls.prompts.tokenization import piece_texts
from code_llama_ls.completion.shape import shape_suggestion
from code_llama_ls.prompts.fim import InfillPrompt

MAX_NEW_TOKENS = 48

SNIPPETS = {
    # (text before the cursor, text after it): cursors where the prompt does not end inside a
    # word or on whitespace, so token healing leaves the ids as they are (asserted below).
    "header": ('import os\n\n\ndef python_files(root):\n    """Every .py file under root."""\n    result = []\n'
               '    for dirpath, dirnames, filenames in os.walk(root):\n        for name in filenames:\n'
               '            if name.endswith(".py"):', "\n    return result\n"),
    "call": ('import json\n\n\ndef load(path):\n    with open(path) as handle:\n        return json.load(',
             ")\n"),
    "recursion": ('def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n    if n < 2:\n        return n\n'
                  '    return fibonacci(n - 1) + fibonacci(', ")\n"),
    "method": ('import math\n\n\nclass Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n\n'
               '    def distance(self, other):', "\n"),
    "attribute": ('import os\n\n\ndef config_path(home):\n    """The path of the config file in home."""\n'
                  '    return os.path.', "\n"),
}


def options(model) -> dict:
    return {"model": str(model), "localFilesOnly": True, "device": "cpu", "maxNewTokens": MAX_NEW_TOKENS,
            "debounceMs": 0, "promptLookupTokens": 0, "instructMaxNewTokens": 48}


def _as_dict(value):
    return value if isinstance(value, dict) else value._asdict()


def reference(model, tokenizer, ids: list[int]) -> tuple[str, bool]:
    """Plain greedy ``generate`` on ``ids``: the text before the first stop token, and whether
    ``maxNewTokens`` cut it."""
    stops = sorted(tokenizer.stop_ids())
    inputs = torch.tensor([ids])
    with torch.inference_mode():
        out = model.generate(inputs, attention_mask=torch.ones_like(inputs), max_new_tokens=MAX_NEW_TOKENS,
                             do_sample=False, eos_token_id=stops, pad_token_id=stops[0])[0, len(ids):].tolist()
    stopped = next((i for i, token in enumerate(out) if token in stops), None)
    generated = out if stopped is None else out[:stopped]
    return tokenizer.decode_infilling(generated), stopped is None


async def test_inline_completions_equal_plain_greedy_generate_after_shaping(
        smollm2_gguf, smollm2_tokenizer, smollm2_model, tmp_path):
    window = Window(options(smollm2_gguf))
    try:
        status = await window.start()
        assert status["state"] == "ready", status
        assert "left-to-right" in status["message"] and window.status["completionMode"] == "left-to-right"
        pieces = piece_texts(smollm2_tokenizer)
        for name, (before, after) in SNIPPETS.items():
            uri = (tmp_path / f"{name}.py").as_uri()
            window.open(uri, before + after)
            line, character = end_of(before)
            shown = await window.complete(uri, line, character)
            prompt = _as_dict(await window.request("codeLlama/prompt", {
                "textDocument": {"uri": uri}, "position": {"line": line, "character": character}}))
            assert prompt["mode"] == "l2r" and prompt["suffix"] == "", name
            assert prompt["prefix"].endswith(before), name
            assert len(prompt["ids"]) + MAX_NEW_TOKENS <= 4096, name
            unhealed = InfillPrompt(prompt["ids"], "l2r", prompt["prefix"], "", prompt["prefixTokens"], 0)
            assert heal(unhealed, pieces, whitespace=True) == (prompt["ids"], ""), f"{name}: the prompt would heal"


            raw, truncated = reference(smollm2_model, smollm2_tokenizer, prompt["ids"])
            expected = shape_suggestion(before, after, "python", raw, truncated)
            assert expected is not None, f"{name}: plain generate gave nothing to show: {raw!r}"
            text, replace_end = expected
            assert shown == [text], f"{name}: raw {raw!r}"
            assert text.strip(), name
            ast.parse(before + text + after[replace_end:])  # the accepted file parses
    finally:
        await window.stop()


async def test_explain_and_docstring_answer_from_the_chatml_prompt(smollm2_gguf, smollm2_tokenizer, tmp_path):
    from lsprotocol import types
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name)
    explained = SNIPPETS["recursion"][0] + "n - 2)\n"
    undocumented = SNIPPETS["call"][0] + "handle)\n"  # `load` has no docstring
    window = Window(options(smollm2_gguf))
    edits: list = []

    @window.client.feature("workspace/applyEdit")
    def apply_edit(params):
        edits.append(params.edit)
        return {"applied": True}

    try:
        assert (await window.start())["state"] == "ready"
        cases = {"explain": (explained, {"start": {"line": 0, "character": 0}, "end": {"line": 5, "character": 0}}),
                 "docstring": (undocumented, {"start": {"line": 3, "character": 4}, "end": {"line": 3, "character": 4}})}
        for action, (text, selection) in cases.items():
            uri = (tmp_path / f"{action}.py").as_uri()
            window.open(uri, text)
            prompt = _as_dict(await window.request("codeLlama/prompt", {
                "action": action, "textDocument": {"uri": uri}, "range": selection}))
            assert prompt["format"] == "template", action
            messages = [_as_dict(m) for m in prompt["messages"]]
            assert [m["role"] for m in messages] == ["system", "user"]
            expected = hf.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
            expected = expected["input_ids"] if hasattr(expected, "keys") else expected
            assert prompt["ids"] == list(expected), action
            assert smollm2_tokenizer.token_id("<|im_end|>") in prompt["stopIds"]

            if action == "explain":
                answer = _as_dict(await window.request("codeLlama/explain", {"textDocument": {"uri": uri},
                                                                             "range": selection}, timeout=300))
                assert answer["markdown"].strip()
                continue
            result = await asyncio.wait_for(window.client.workspace_execute_command_async(types.ExecuteCommandParams(
                command="codeLlama.generateDocstring", arguments=[uri, selection])), 300)
            assert _as_dict(result).get("applied") is True, result
            (edit,) = edits
            (inserted,) = [change.new_text for document in edit.document_changes for change in document.edits]
            assert '"""' in inserted and inserted.replace('"""', "").strip()
    finally:
        await window.stop()
