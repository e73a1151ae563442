"""What a model can do with prompts: whether it infills (and with which tokens), its chat
format, its context length.

A tokenizer is not enough to tell: Code Llama 34B, 70B and the ``-Python`` variants carry (or
are served with) Code Llama's tokenizer, but Meta trained only 7B and 13B (base and Instruct)
for infilling. Detection reads, in this order:

1. the ``infilling`` setting (``on`` / ``off`` override everything but a tokenizer without FIM
   tokens, which cannot infill at all);
2. the model's name — hub id, folder or file name, and ``_name_or_path`` / a GGUF's
   ``general.name`` — against :data:`KNOWN_CHECKPOINTS`;
3. ``config.json`` fields (or a GGUF's metadata under the same names): ``vocab_size`` (Code Llama's
   FIM tokens are ids 32007–32010 of a 32,016-token vocabulary; Python/34B have 32,000),
   ``hidden_size`` and ``num_hidden_layers`` (34B: 8192 × 48, 70B: 8192 × 80), ``rope_theta`` (Code
   Llama's 1,000,000) and ``max_position_embeddings`` (the context length);
4. otherwise: a tokenizer with FIM tokens infills (a fine-tune of 7B/13B, the tests' models).

Only Code Llama's FIM token set is known (``tokenization.FIM_FORMATS``); every other model runs
left to right. Another family's FIM format is one entry there and its checkpoints' rows here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Literal

from code_llama_ls.prompts.tokenization import ModelTokenizer

Infilling = Literal["auto", "on", "off"]
ChatFormat = Literal["llama2", "step", "template"]
CODE_LLAMA_ROPE_THETA = 1_000_000.0
CODE_LLAMA_FIM_VOCAB = 32_016


@dataclass(frozen=True)
class KnownCheckpoint:
    pattern: str  # searched in the lowercased name with everything but letters and digits removed
    infills: bool
    why: str


KNOWN_CHECKPOINTS: tuple[KnownCheckpoint, ...] = (
    KnownCheckpoint(r"codellama\d+bpython", False, "Code Llama - Python was not trained for infilling"),
    KnownCheckpoint(r"codellama34b", False, "Code Llama 34B was not trained for infilling"),
    KnownCheckpoint(r"codellama70b", False, "Code Llama 70B was not trained for infilling"),
    KnownCheckpoint(r"codellama(7|13)b", True, "Code Llama 7B/13B infill"),
)
"""Checkpoints by name, most specific first (``CodeLlama-7b-Python-hf`` is Python, not 7B)."""

CONFIG_SHAPES = {(8192, 48): "34B", (8192, 80): "70B"}
"""Code Llama's (hidden_size, num_hidden_layers) of the sizes that do not infill."""


@dataclass(frozen=True)
class Capabilities:
    infilling: bool
    chat_format: ChatFormat
    context_length: int | None  # the model's positions (None: unknown)
    why: str  # what decided ``infilling``, for the status and logs
    setting: Infilling = "auto"  # the ``infilling`` setting they were detected under

    @property
    def completion_mode(self) -> str:
        return "fill-in-the-middle" if self.infilling else "left-to-right"

    def context_tokens(self, configured: int) -> int:
        """The prompt + completion budget: the configured one, within the model's positions."""
        return min(configured, self.context_length) if self.context_length else configured


def _names(model: str, config: dict[str, Any]) -> list[str]:
    names = [PurePath(model).name or model, model, str(config.get("_name_or_path") or "")]
    return [re.sub(r"[^a-z0-9]", "", name.lower()) for name in names if name]


def _by_name(model: str, config: dict[str, Any]) -> KnownCheckpoint | None:
    for name in _names(model, config):
        for known in KNOWN_CHECKPOINTS:
            if re.search(known.pattern, name):
                return known
    return None


def _by_config(config: dict[str, Any]) -> str | None:
    """Why the config says a Code Llama checkpoint cannot infill, or None."""
    if config.get("rope_theta") != CODE_LLAMA_ROPE_THETA:
        return None
    shape = CONFIG_SHAPES.get((config.get("hidden_size"), config.get("num_hidden_layers")))
    if shape is not None:
        return f"its config has Code Llama {shape}'s shape, which was not trained for infilling"
    vocab = config.get("vocab_size")
    if isinstance(vocab, int) and vocab < CODE_LLAMA_FIM_VOCAB:
        return f"its config has {vocab} embeddings: no room for Code Llama's infilling tokens"
    return None


def detect(model: str, config: dict[str, Any], tokenizer: ModelTokenizer, infilling: Infilling = "auto") -> Capabilities:
    """The model's capabilities; ``TokenizerError`` for ``infilling: on`` without FIM tokens."""
    has_fim = tokenizer.special.fim
    if infilling == "on" and not has_fim:
        tokenizer.require_infilling()  # raises: says which tokens are missing
    if infilling == "off":
        infills, why = False, "infilling: off"
    elif not has_fim:
        infills, why = False, "its tokenizer has no infilling tokens"
    elif infilling == "on":
        infills, why = True, "infilling: on"
    elif (known := _by_name(model, config)) is not None:
        infills, why = known.infills, known.why
    elif (reason := _by_config(config)) is not None:
        infills, why = False, reason
    else:
        infills, why = True, "its tokenizer has Code Llama's infilling tokens"
    length = config.get("max_position_embeddings")
    return Capabilities(infills, chat_format(tokenizer, model, config), length if isinstance(length, int) else None,
                        why, infilling)


def chat_format(tokenizer: ModelTokenizer, model: str = "", config: dict[str, Any] | None = None) -> ChatFormat:
    """Code Llama 70B's ``<step>`` dialog; Meta's ``[INST]`` format for Code Llama and Llama 2 (and
    any tokenizer without a template); the tokenizer's own chat template for other models."""
    if tokenizer.token_id("<step>") is not None:
        return "step"
    code_llama = tokenizer.special.fim or _by_name(model, config or {}) is not None
    if code_llama or not tokenizer.chat_template:
        return "llama2"
    return "template"


__all__ = ["Capabilities", "KNOWN_CHECKPOINTS", "chat_format", "detect"]
