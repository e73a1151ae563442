"""Turning the token-exact prompt into what a remote server accepts.

Token ids go as they are where the server takes them (vLLM, llama.cpp, our model server). Where
it takes only text (TGI, Ollama), the ids are rendered as text: control tokens as their
vocabulary pieces (``▁<PRE>``, which Code Llama's tokenizer merges back into the control id),
the runs between them decoded exactly as the model would show them, the leading BOS left to the
server, and the first run without the leading space that the tokenizer's dummy prefix adds back.
Code Llama's own (Hugging Face) tokenizer, which TGI and vLLM run, turns this text back into the
same ids (tests/backends/test_remote_prompt.py checks PSM, SPM and instruct prompts). llama.cpp's
tokenizer (so Ollama's) adds a dummy-prefix ``▁`` after each control token unless the GGUF sets
``tokenizer.ggml.add_space_prefix = false``, so there the text path is not exact.
"""

from __future__ import annotations

from code_llama_ls.prompts.tokenization import ModelTokenizer


def control_ids(tokenizer: ModelTokenizer) -> frozenset[int]:
    step = tokenizer.token_id("<step>")
    return tokenizer.control_ids() | ({step} if step is not None else set())


def piece_text(tokenizer: ModelTokenizer, token: int) -> str:
    """A control token's vocabulary piece (``▁<PRE>``, ``<s>``)."""
    text = tokenizer.decode_infilling([token])
    return "▁" + text[1:] if text.startswith(" ") else text


def prompt_text(tokenizer: ModelTokenizer, ids: list[int]) -> str:
    """The prompt ids as text for a server that tokenizes it (and adds BOS) itself."""
    controls = control_ids(tokenizer)
    parts: list[str] = []
    run: list[int] = []

    def flush() -> None:
        if run:
            text = tokenizer.decode_infilling(run)
            if not parts and text.startswith(" ") and tokenizer.sentencepiece:
                text = text[1:]  # the server's dummy prefix puts this ▁ back
            parts.append(text)
            run.clear()

    for index, token in enumerate(ids):
        if token in controls:
            flush()
            if index == 0 and token == tokenizer.special.bos:
                continue
            parts.append(piece_text(tokenizer, token))
        else:
            run.append(token)
    flush()
    return "".join(parts)


def stop_strings(tokenizer: ModelTokenizer, stop_ids: frozenset[int]) -> list[str]:
    """Text forms of the stop tokens (``" <EOT>"`` and ``"<EOT>"``, ``"</s>"``), for servers that
    stop on strings and for the client-side cut."""
    found: set[str] = set()
    for token in stop_ids:
        text = tokenizer.decode_infilling([token])
        if text:
            found.add(text)
            if text.strip() and text.strip() != text:
                found.add(text.strip())
    return sorted(found)
