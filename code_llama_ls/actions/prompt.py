"""The instruct prompt of an action: the code, its enclosing scope, the file's imports and the
skeletons of what it uses, within a token budget (pure apart from the context engine's lookups).

Priority when the budget is short: the code itself (required), then the enclosing scope (whole,
else its header), then the imports, then the skeletons; the lowest priority goes first.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from code_llama_ls.actions.targets import FENCE_NAMES, LANGUAGE_LABELS, Target
from code_llama_ls.actions.testfiles import FRAMEWORKS
from code_llama_ls.context.engine import ContextEngine, scope_and_imports
from code_llama_ls.documents import Document
from code_llama_ls.languages import comment_prefix
from code_llama_ls.prompts.instruct import (InstructFormat, InstructPrompt, Message, build_instruct_prompt,
                                            check_user_text)

SYSTEM_PROMPT = "You are an expert programmer. Answer accurately and concisely."


class PromptTooLong(ValueError):
    """Even the code alone does not fit the model's context."""


@dataclass(frozen=True)
class ActionContext:
    language: str
    code: str
    scope: str = ""  # the enclosing scope's text (or header), when larger than the code
    imports: str = ""
    skeletons: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (path, skeleton)


def gather_context(document: Document, start: int, end: int, context: ContextEngine | None) -> ActionContext:
    """What the prompt may hold about ``document[start:end]``; without a context engine (a prompt
    built outside the server) there are no skeletons, but the scope and imports are still there."""
    about = context.about_range(document, start, end) if context is not None \
        else scope_and_imports(document, start, end)
    skeletons = tuple((block.path, block.body) for block in about.definitions)
    return ActionContext(document.language, document.text[start:end], about.scope, about.imports, skeletons)


def _fence(language: str) -> str:
    return FENCE_NAMES.get(language, language)


def _block(language: str, body: str) -> str:
    return f"```{_fence(language)}\n{body.strip(chr(10))}\n```"


def instruction(kind: str, language: str, *, question: str | None = None, target: Target | None = None,
                module: str | None = None) -> str:
    label = LANGUAGE_LABELS.get(language, "")
    code_words = f"{label} code" if label else "code"
    if kind == "explain":
        return f"Explain what this {code_words} does."
    if kind == "ask":
        return f"{(question or '').strip()}\n\nThe question is about this {code_words}."
    if target is None:
        raise ValueError(f"{kind} needs a target")
    what = f"the {label} {target.kind} `{target.name}`" if target.kind != "module" else f"the {label} module `{target.name}`"
    if kind == "docstring":
        return (f"Write a docstring for {what}. Reply with the docstring text only, "
                f"without quotes or comment markers.")
    if kind == "tests":
        where = f" (module `{module}`)" if module else ""
        return f"Write {FRAMEWORKS.get(language, 'unit')} tests for {what}{where}. Reply with one ```{_fence(language)} code block."
    raise ValueError(f"unknown action {kind!r}")


def user_message(head: str, ctx: ActionContext) -> str:
    parts = [head]
    if ctx.imports:
        parts.append("The file's imports:\n" + _block(ctx.language, ctx.imports))
    if ctx.skeletons:
        prefix = comment_prefix(ctx.language)
        body = "\n\n".join(f"{prefix} {path}\n{skeleton}" for path, skeleton in ctx.skeletons)
        parts.append("Definitions it uses:\n" + _block(ctx.language, body))
    if ctx.scope:
        parts.append("It is part of:\n" + _block(ctx.language, ctx.scope))
    parts.append(_block(ctx.language, ctx.code))
    return "\n\n".join(parts)


def dialog_for(head: str, ctx: ActionContext) -> list[Message]:
    return [Message("system", SYSTEM_PROMPT), Message("user", user_message(head, ctx))]


def fit_prompt(tokenizer, head: str, ctx: ActionContext, limit: int,
               chat_format: InstructFormat | None = None) -> tuple[InstructPrompt, ActionContext]:
    """The prompt with as much context as fits ``limit`` tokens (prompt only)."""
    candidates = [ctx]
    current = ctx
    for i in range(len(ctx.skeletons) - 1, -1, -1):
        current = replace(current, skeletons=ctx.skeletons[:i])
        candidates.append(current)
    current = replace(current, imports="")
    candidates.append(current)
    if current.scope:
        header = current.scope.split("\n", 1)[0]
        candidates.append(replace(current, scope=header))
        candidates.append(replace(current, scope=""))
    for candidate in candidates:
        prompt = build_instruct_prompt(tokenizer, dialog_for(head, candidate), chat_format)
        if len(prompt.ids) <= limit:
            return prompt, candidate
    raise PromptTooLong(f"the code is too long for the model's context ({len(prompt.ids)} tokens, at most {limit}): "
                        "choose less code, or raise maxContextTokens (--max-context-tokens)")


def check_question(question: str | None) -> str:
    if question is None or not question.strip():
        raise ValueError("ask needs a question")
    check_user_text(question)
    return question


def action_prompt(tokenizer, kind: str, document: Document, start: int, end: int, *, target: Target | None = None,
                  question: str | None = None, module: str | None = None, context: ContextEngine | None = None,
                  limit: int = 1 << 30, chat_format: InstructFormat | None = None) -> InstructPrompt:
    """The instruct prompt of an action on ``document[start:end]`` (the target's text for
    docstring/tests), as the server builds it."""
    head = instruction(kind, document.language, question=question, target=target, module=module)
    return fit_prompt(tokenizer, head, gather_context(document, start, end, context), limit, chat_format)[0]
