"""The completion prompt at a cursor: the document around it, the context blocks packed before
it, within the model's budget, in the mode the model and the trigger call for."""

from __future__ import annotations

from code_llama_ls.context.engine import ContextEngine
from code_llama_ls.documents import Document
from code_llama_ls.languages import comment_prefix
from code_llama_ls.prompts.capabilities import Capabilities
from code_llama_ls.prompts.fim import Budget, InfillParts, InfillPrompt, PromptMode, build_infill_prompt
from code_llama_ls.prompts.tokenization import ModelTokenizer
from code_llama_ls.settings import Settings


def prompt_mode(settings: Settings, infilling: bool, automatic: bool = False) -> PromptMode:
    """Left to right for a model that does not infill; else ``fimMode``, whose ``auto`` is SPM for
    automatic inline triggers (typing appends to the prompt's end, so a cached KV prefix stays
    valid) and PSM otherwise."""
    if not infilling:
        return "l2r"
    if settings.fim_mode == "auto":
        return "spm" if automatic else "psm"
    return settings.fim_mode


def build_prompt(document: Document, offset: int, tokenizer: ModelTokenizer, settings: Settings,
                 device_type: str, context: ContextEngine | None = None, automatic: bool = False,
                 capabilities: Capabilities | None = None) -> InfillPrompt:
    """The prompt at ``offset``: the document around the cursor, and context packed before it.

    ``capabilities``: the loaded model's (``Runtime.capabilities``); without them, a tokenizer
    with FIM tokens infills."""
    infilling = capabilities.infilling if capabilities is not None else tokenizer.special.fim
    context_tokens = settings.context_tokens_for(device_type)
    if capabilities is not None:
        context_tokens = capabilities.context_tokens(context_tokens)
    budget = Budget(context_tokens, settings.max_new_tokens, settings.prefix_ratio)
    blocks = context.collect(document, offset) if context is not None else []
    return build_infill_prompt(
        tokenizer, document.text[:offset], document.text[offset:], budget, prompt_mode(settings, infilling, automatic),
        context=blocks, comment_prefix=comment_prefix(document.language),
    )


def infill_parts(prompt: InfillPrompt) -> InfillParts:
    """The prompt's texts for servers that build the infilling prompt themselves: the local
    prefix (the packed context blocks come first in ``prompt.prefix``) and the blocks apart."""
    packed = "".join(snippet.text for snippet in prompt.snippets)
    local = prompt.prefix[len(packed):] if prompt.prefix.startswith(packed) else prompt.prefix
    return InfillParts(local, prompt.suffix, tuple((snippet.path, snippet.text) for snippet in prompt.snippets))
