"""Instruct (chat) prompts, token-exact with Meta's reference for Code Llama - Instruct.

Meta's ``llama/generation.py`` (``chat_completion``) builds a dialog's ids as:

- a system message is folded into the first user message: ``B_SYS + system + E_SYS + user``;
- each (user, assistant) pair: ``[BOS] + enc(f"{B_INST} {user.strip()} {E_INST} {answer.strip()} ")
  + [EOS]``;
- the last user message: ``[BOS] + enc(f"{B_INST} {user.strip()} {E_INST}")``;

where ``enc`` is SentencePiece's encoding with its implicit leading ``▁``
(:meth:`ModelTokenizer.encode`). A message containing one of the special tags is refused, as
the reference does; the caller quotes selected code in a fenced block, which is allowed to hold
the tags (this project's own source does).

Code Llama 70B - Instruct uses a different dialog format (``Source: …`` turns separated by
``<step>``); it is used when the tokenizer has a ``<step>`` token. Other models (SmolLM2's
ChatML …) get the chat template their tokenizer ships (:func:`template_chat_ids`), with the ids
``apply_chat_template`` gives, except that the messages' text is encoded as text: a selection
holding ``<|im_end|>`` cannot end the user's turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"
SPECIAL_TAGS = (B_INST, E_INST, "<<SYS>>", "<</SYS>>")
UNSAFE_ERROR = "special tags are not allowed as part of the prompt"
STEP = "<step>"

Role = Literal["system", "user", "assistant"]
InstructFormat = Literal["llama2", "step", "template"]


class PromptRefused(ValueError):
    """The user's text cannot be put into an instruct prompt (it holds special tags)."""


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class InstructPrompt:
    ids: list[int]
    format: InstructFormat
    stop_ids: frozenset[int] = field(default_factory=frozenset)
    messages: tuple[tuple[str, str], ...] = ()  # the dialog as (role, content), for chat endpoints


class ChatTokenizer(Protocol):
    """What the chat formats need (``ModelTokenizer`` has all of it)."""

    special: Any  # .bos, .eos
    chat_template: str | None
    special_tokens: dict[str, str]  # bos_token, eos_token … as the template names them

    def encode(self, text: str) -> list[int]: ...

    def encode_infilling(self, text: str) -> list[int]: ...

    def encode_template(self, text: str) -> list[int]: ...

    def decode_infilling(self, ids: list[int]) -> str: ...

    def token_id(self, piece: str) -> int | None: ...

    def stop_ids(self) -> frozenset[int]: ...

    def control_ids(self) -> frozenset[int]: ...


def check_user_text(text: str, what: str = "question") -> None:
    """Refuse text holding ``[INST]``, ``[/INST]``, ``<<SYS>>`` or ``<</SYS>>`` (the reference's rule)."""
    found = [tag for tag in SPECIAL_TAGS if tag in text]
    if found:
        raise PromptRefused(f"the {what} contains {', '.join(found)}: {UNSAFE_ERROR}")


def fold_system(dialog: Sequence[Message]) -> list[Message]:
    """The reference's handling of a system message, and its role-order check."""
    messages = list(dialog)
    if messages and messages[0].role == "system":
        if len(messages) < 2:
            raise ValueError("a system message must be followed by a user message")
        messages = [Message(messages[1].role, B_SYS + messages[0].content + E_SYS + messages[1].content),
                    *messages[2:]]
    if not messages or messages[-1].role != "user":
        raise ValueError("the last message must be from the user")
    if not all(m.role == "user" for m in messages[::2]) or not all(m.role == "assistant" for m in messages[1::2]):
        raise ValueError("roles must be system?, user, assistant, user, … alternating")
    return messages


def llama2_chat_ids(tokenizer: ChatTokenizer, dialog: Sequence[Message]) -> list[int]:
    """Meta's ``chat_completion`` prompt ids for one dialog."""
    messages = fold_system(dialog)
    bos, eos = tokenizer.special.bos, tokenizer.special.eos
    if bos is None:
        raise ValueError("the tokenizer has no BOS token <s>; it cannot hold Meta's dialog format")
    if eos is None:
        raise ValueError("the tokenizer has no EOS token </s>; it cannot hold a multi-turn dialog")
    ids: list[int] = []
    for prompt, answer in zip(messages[:-1:2], messages[1::2]):
        ids += [bos, *tokenizer.encode(f"{B_INST} {prompt.content.strip()} {E_INST} {answer.content.strip()} "), eos]
    ids += [bos, *tokenizer.encode(f"{B_INST} {messages[-1].content.strip()} {E_INST}")]
    return ids


def step_dialog_text(dialog: Sequence[Message]) -> str:
    """Code Llama 70B - Instruct's dialog (its published chat template), after ``<s>``."""
    parts = [f"Source: {m.role}\n\n {m.content.strip()} {STEP} " for m in dialog]
    return "".join(parts) + "Source: assistant\nDestination: user\n\n "


def step_chat_ids(tokenizer: ChatTokenizer, dialog: Sequence[Message]) -> list[int]:
    step = tokenizer.token_id(STEP)
    if step is None:
        raise ValueError("the tokenizer has no <step> token")
    ids = [tokenizer.special.bos]
    pieces = step_dialog_text(dialog).split(STEP)
    for i, piece in enumerate(pieces):
        if i:
            ids.append(step)
        ids += tokenizer.encode_infilling(piece)
    return ids


_MARK = "\ue000{}\ue001"
"""Stands for a message's text while the template renders (private-use characters: no template
touches them), so that text can be encoded apart from the template's own tokens."""


def template_chat_ids(tokenizer: ChatTokenizer, dialog: Sequence[Message]) -> list[int]:
    """The tokenizer's chat template rendered as transformers renders it (generation prompt
    added) and encoded as ``apply_chat_template`` encodes it, control tokens parsed; except where
    a message holds a control token's text: then each message is encoded as text apart from the
    template around it (exact wherever no token would span a message's edge), so that it cannot
    end its turn. A template that refuses a system message gets it folded into the first user
    message, as Meta's format does."""
    from jinja2.exceptions import TemplateError

    if not tokenizer.chat_template:
        raise ValueError("the tokenizer has no chat template")
    try:
        return _render_ids(tokenizer, dialog)
    except TemplateError as exc:
        if not dialog or dialog[0].role != "system" or len(dialog) < 2:
            raise ValueError(f"the model's chat template refused the dialog: {exc}") from exc
    folded = [Message(dialog[1].role, f"{dialog[0].content}\n\n{dialog[1].content}"), *dialog[2:]]
    try:
        return _render_ids(tokenizer, folded)
    except TemplateError as exc:
        raise ValueError(f"the model's chat template refused the dialog: {exc}") from exc


def _render(tokenizer: ChatTokenizer, contents: Sequence[tuple[str, str]]) -> str:
    from transformers.utils.chat_template_utils import render_jinja_template

    return render_jinja_template(conversations=[[{"role": role, "content": text} for role, text in contents]],
                                 chat_template=tokenizer.chat_template, add_generation_prompt=True,
                                 **tokenizer.special_tokens)[0][0]


def _render_ids(tokenizer: ChatTokenizer, dialog: Sequence[Message]) -> list[int]:
    controls = [tokenizer.decode_infilling([i]) for i in tokenizer.control_ids()]
    if not any(text and text in m.content for m in dialog for text in controls):
        return tokenizer.encode_template(_render(tokenizer, [(m.role, m.content) for m in dialog]))
    marks = [_MARK.format(i) for i in range(len(dialog))]
    rendered = _render(tokenizer, [(m.role, mark) for m, mark in zip(dialog, marks)])
    ids: list[int] = []
    for message, mark in zip(dialog, marks):
        before, found, rendered = rendered.partition(mark)
        if not found or mark in rendered:
            raise ValueError("the chat template changes or repeats the messages' text; it cannot hold one "
                             "that contains a control token's text")
        ids += tokenizer.encode_template(before) + tokenizer.encode_infilling(message.content)
    return ids + tokenizer.encode_template(rendered)


def build_instruct_prompt(tokenizer: ChatTokenizer, dialog: Sequence[Message],
                          chat_format: InstructFormat | None = None) -> InstructPrompt:
    """Ids for a dialog in the format the model was trained on (``Capabilities.chat_format``;
    by default the one the tokenizer shows)."""
    if chat_format is None:
        from code_llama_ls.prompts.capabilities import chat_format as format_of

        chat_format = format_of(tokenizer)  # type: ignore[arg-type]
    stops = {tokenizer.special.eos} if tokenizer.special.eos is not None else set()
    messages = tuple((m.role, m.content) for m in dialog)
    if chat_format == "step":
        step = tokenizer.token_id(STEP)
        return InstructPrompt(step_chat_ids(tokenizer, dialog), "step", frozenset(stops | {step}), messages)
    if chat_format == "template":
        return InstructPrompt(template_chat_ids(tokenizer, dialog), "template", tokenizer.stop_ids(), messages)
    return InstructPrompt(llama2_chat_ids(tokenizer, dialog), "llama2", frozenset(stops), messages)


__all__ = [
    "B_INST", "E_INST", "B_SYS", "E_SYS", "SPECIAL_TAGS", "UNSAFE_ERROR", "Message", "InstructPrompt",
    "PromptRefused", "build_instruct_prompt", "check_user_text", "llama2_chat_ids", "template_chat_ids",
    "step_chat_ids", "step_dialog_text",
]
