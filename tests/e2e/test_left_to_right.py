"""Left-to-right completion for a checkpoint Meta did not train for infilling, through the real
server over stdio: a tiny random Llama on Code Llama's tokenizer (which has the FIM tokens)
saved as ``CodeLlama-34b-hf`` with Code Llama's ``rope_theta``, as a user's download of 34B is
named. The prompt has no suffix and never exceeds the budget, the status says left-to-right, and
``infilling: on`` overrides the detection."""

from __future__ import annotations

import json

from benchmarks.lsp_window import Window, end_of

MAX_CONTEXT = 256
MAX_NEW = 16


def _as_dict(value):
    return value if isinstance(value, dict) else value._asdict()


def code_llama_34b(random_model, tmp_path):
    folder = tmp_path / "CodeLlama-34b-hf"
    folder.mkdir()
    for item in random_model.iterdir():
        if item.name != "config.json":
            (folder / item.name).symlink_to(item)
    config = json.loads((random_model / "config.json").read_text())
    config.update(rope_theta=1_000_000.0, _name_or_path="codellama/CodeLlama-34b-hf")
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def document() -> tuple[str, str]:
    """A long file and a cursor in its middle, inside a function, with code after it."""
    functions = [f"def f{i}(x):\n    total = x * {i}\n    return total + {i}\n\n" for i in range(300)]
    before = "".join(functions[:150]) + "def target(values):\n    result = sum("
    return before, ")\n    return result\n\n" + "".join(functions[150:])


async def test_a_non_infilling_checkpoint_gets_left_to_right_prompts_within_the_budget(random_model, tmp_path):
    model = code_llama_34b(random_model, tmp_path)
    window = Window({"model": str(model), "localFilesOnly": True, "device": "cpu", "maxContextTokens": MAX_CONTEXT,
                     "maxNewTokens": MAX_NEW, "debounceMs": 0, "contextEnabled": False})
    before, after = document()
    uri = (tmp_path / "long.py").as_uri()
    line, character = end_of(before)
    position = {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}
    try:
        status = await window.start()
        assert status["state"] == "ready", status
        assert "left-to-right (Code Llama 34B was not trained for infilling)" in status["message"]
        window.open(uri, before + after)
        prompt = _as_dict(await window.request("codeLlama/prompt", position))
        assert prompt["mode"] == "l2r" and prompt["suffix"] == "" and prompt["suffixTokens"] == 0
        assert before.endswith(prompt["prefix"]) and len(prompt["prefix"]) < len(before)  # cut to the budget
        assert len(prompt["ids"]) + MAX_NEW <= MAX_CONTEXT
        assert prompt["ids"][0] == 1 and not {32007, 32008, 32009, 32010} & set(prompt["ids"])  # BOS, no FIM token
        await window.complete(uri, line, character)
        assert window.status["lastPromptMode"] == "l2r" and window.status["completionMode"] == "left-to-right"

        window.client.workspace_did_change_configuration(_configuration({"infilling": "on"}))
        prompt = _as_dict(await window.request("codeLlama/prompt", position))
        assert prompt["mode"] == "psm" and prompt["suffix"] and after.startswith(prompt["suffix"])
        assert len(prompt["ids"]) + MAX_NEW <= MAX_CONTEXT
        assert window.status["completionMode"] == "fill-in-the-middle"
    finally:
        await window.stop()


def _configuration(settings: dict):
    from lsprotocol import types

    return types.DidChangeConfigurationParams(settings={"codeLlama": settings})
