"""The package reads as the pipeline: each stage imports only itself and the stages below it.

Every import in the package counts, those inside functions and under ``TYPE_CHECKING`` too. The
map below places every module; a module it does not place fails, so a new module is placed on
purpose (docs/architecture.md says where things go).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "code_llama_ls"

STAGES: list[list[str]] = [
    # lowest first; modules of one stage may import each other (without a cycle); those in
    # different groups of one stage (completion | actions …) may not
    ["code_llama_ls", "settings", "options", "languages", "memory", "model_files", "lifetime", "exits"],
    ["documents"],
    ["context"],
    ["prompts"],
    ["backends"],
    ["runtime"],
    ["completion", "actions"],
    ["lsp", "model_server", "eval"],
    ["cli"],
    ["__main__"],
]
"""A stage's entries are modules or packages of ``code_llama_ls``, named without the prefix."""

FOUNDATION = {"code_llama_ls", "settings", "options", "languages", "memory", "model_files", "lifetime", "exits"}
"""The lowest stage's entries are leaf utilities that any stage uses; they share one group."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports, wherever the import statement stands."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # ``from package import module`` imports the module; ``from module import name`` the module
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def place(name: str) -> tuple[int, str] | None:
    """(stage, group) of a module: its longest matching entry in the map."""
    short = name.removeprefix("code_llama_ls.") if name != "code_llama_ls" else name
    for stage, entries in enumerate(STAGES):
        for entry in entries:
            if short == entry or short.startswith(entry + "."):
                return stage, "foundation" if entry in FOUNDATION else entry
    return None


def graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {name: imported(name, path, modules) for name, path in modules.items()}


def test_every_module_has_a_place_on_the_map():
    unplaced = sorted(name for name in package_modules() if place(name) is None)
    assert not unplaced, f"modules the stage map does not place: {unplaced}"


def stage_violations(edges: dict[str, set[str]]) -> list[str]:
    wrong = []
    for name, targets in edges.items():
        where = place(name)
        for target in sorted(targets):
            there = place(target)
            if where is None or there is None:
                continue
            if there[0] > where[0]:
                wrong.append(f"{name} (stage {where[0]}) imports {target} (stage {there[0]}): a later stage")
            elif there[0] == where[0] and there[1] != where[1]:
                wrong.append(f"{name} imports {target}: siblings {where[1]} and {there[1]} must not import each other")
    return wrong


def import_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(edges.get(name, ())):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    return cycles


def test_no_stage_imports_a_later_stage_or_a_sibling():
    wrong = stage_violations(graph())
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle():
    cycles = import_cycles(graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_the_checks_catch_what_they_are_for():
    up = {"code_llama_ls.documents": {"code_llama_ls.context.engine"}, "code_llama_ls.context.engine": set()}
    assert stage_violations(up) == ["code_llama_ls.documents (stage 1) imports code_llama_ls.context.engine "
                                    "(stage 2): a later stage"]
    siblings = {"code_llama_ls.actions.service": {"code_llama_ls.completion.engine"}}
    assert len(stage_violations(siblings)) == 1
    down = {"code_llama_ls.completion.engine": {"code_llama_ls.prompts.fim", "code_llama_ls.settings"}}
    assert stage_violations(down) == []
    loop = {"code_llama_ls.cli.main": {"code_llama_ls.cli.actions"}, "code_llama_ls.cli.actions": {"code_llama_ls.cli.main"}}
    assert import_cycles(loop) == [["code_llama_ls.cli.actions", "code_llama_ls.cli.main", "code_llama_ls.cli.actions"]]
    assert place("code_llama_ls.bench.tiny_model") is None


def test_the_package_imports_no_test_or_benchmark_tooling():
    wrong = []
    for name, path in package_modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            wrong += [f"{name} imports {n}" for n in names if n.split(".")[0] in ("benchmarks", "tests", "support")]
    assert not wrong, wrong


@pytest.mark.parametrize("source, expected", [
    ("from code_llama_ls.documents import Document", {"code_llama_ls.documents"}),
    ("from code_llama_ls.context import base", {"code_llama_ls.context.base"}),
    ("from . import base", {"code_llama_ls.context.base"}),
    ("from .base import Scope", {"code_llama_ls.context.base"}),
    ("def f():\n    from code_llama_ls.settings import Settings", {"code_llama_ls.settings"}),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from code_llama_ls.lsp.server import CodeLlamaServer",
     {"code_llama_ls.lsp.server"}),
    ("import code_llama_ls.prompts.fim as fim", {"code_llama_ls.prompts.fim"}),
])
def test_the_reader_sees_every_kind_of_import(tmp_path, source, expected):
    path = tmp_path / "engine.py"
    path.write_text(source)
    modules = package_modules()
    assert imported("code_llama_ls.context.engine", path, modules) == expected


LONGEST_FUNCTION = 80


def test_no_function_over_80_lines():
    long = []
    for name, path in package_modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > LONGEST_FUNCTION:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert not long, long
