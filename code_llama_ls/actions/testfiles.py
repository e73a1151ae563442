"""Where generated tests go, and how they are merged into a new or existing test file (pure).

- Python: ``tests/test_<module>.py`` under the workspace root, pytest, importing the target by
  its module path (a ``src/`` layout is stripped);
- JavaScript/TypeScript: ``<name>.test.<ext>`` beside the file, importing ``./<name>``;
- Go: ``<name>_test.go`` beside the file, in the same package;
- Rust: a ``#[cfg(test)] mod tests`` appended to the file itself (extended when present);
- Java: a JUnit 5 class ``<Name>Test`` on the mirrored ``src/test/java`` path;
- C/C++: ``tests/test_<name>.c|cpp`` with assert-based cases and a ``main``.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from pathlib import Path

from code_llama_ls.actions.edits import FileChange, TextChange
from code_llama_ls.actions.targets import parse
from code_llama_ls.documents import to_char

SUPPORTED = ("python", "javascript", "typescript", "typescriptreact", "java", "rust", "go", "c", "cpp")
FRAMEWORKS = {"python": "pytest", "javascript": "Jest", "typescript": "Jest", "typescriptreact": "Jest",
              "java": "JUnit 5", "rust": "Rust #[test]", "go": "Go testing", "c": "assert.h with a main function",
              "cpp": "assert (<cassert>) with a main function"}


class TestFileError(ValueError):
    """Tests cannot be placed (outside the workspace, unsupported language …)."""


Reader = Callable[[Path], "str | None"]


def root_for(path: Path, roots: list[Path]) -> Path:
    """The workspace root holding ``path`` (the deepest), else the file's folder."""
    holding = [r for r in roots if path.is_relative_to(r)]
    return max(holding, key=lambda r: len(r.parts)) if holding else path.parent


def python_module(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts) if path.is_relative_to(root) else [path.stem]
    if parts and parts[0] == "src" and len(parts) > 1:
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or path.stem


def test_path(language: str, path: Path, text: str, roots: list[Path]) -> Path:
    root = root_for(path, roots)
    stem = path.stem
    if language == "python":
        return root / "tests" / f"test_{python_module(path, root).rsplit('.', 1)[-1]}.py"
    if language in ("javascript", "typescript", "typescriptreact"):
        return path.with_name(f"{stem}.test{path.suffix}")
    if language == "go":
        return path.with_name(f"{stem}_test.go")
    if language == "rust":
        return path
    if language == "java":
        parts = path.parts
        for i in range(len(parts) - 2):
            if parts[i:i + 3] == ("src", "main", "java"):
                return Path(*parts[:i], "src", "test", "java", *parts[i + 3:-1], f"{stem}Test.java")
        package = _java_package(text)
        return root / "src" / "test" / "java" / Path(*package.split(".")) / f"{stem}Test.java" if package \
            else root / "src" / "test" / "java" / f"{stem}Test.java"
    if language in ("c", "cpp"):
        return root / "tests" / f"test_{stem}.{'cpp' if language == 'cpp' else 'c'}"
    raise TestFileError(f"generating tests is not supported for {language}")


def test_file_change(language: str, path: Path, text: str, code: str, names: list[str], roots: list[Path],
                     read: Reader) -> FileChange:
    """The change creating or extending the test file for ``path`` with the model's ``code``."""
    if language not in SUPPORTED:
        raise TestFileError(f"generating tests is not supported for {language}")
    target = test_path(language, path, text, roots)
    if roots and not any(target.is_relative_to(r) for r in roots):
        raise TestFileError(f"{target} is outside the workspace; no file was created")
    existing = read(target)
    root = root_for(path, roots)
    builder = {"python": _python, "javascript": _javascript, "typescript": _javascript, "typescriptreact": _javascript,
               "go": _go, "rust": _rust, "java": _java, "c": _c, "cpp": _c}[language]
    return builder(language, path, text, code, names, root, target, existing)


# -- helpers ---------------------------------------------------------------------------------------


def _split_imports(code: str, pattern: re.Pattern) -> tuple[list[str], str]:
    """Leading import lines (by ``pattern``) of code, and the rest."""
    imports, rest = [], []
    for line in code.strip("\n").split("\n"):
        if pattern.match(line) and not rest:
            imports.append(line)
        elif not line.strip() and not rest:
            continue
        else:
            rest.append(line)
    return imports, "\n".join(rest).strip("\n")


def _merge(target: Path, existing: str | None, imports: list[str], body: str, header: str = "",
           gap: str = "\n\n") -> FileChange:
    """Create ``header + imports + body``, or add missing imports after the existing ones and
    append the body."""
    if existing is None:
        parts = [p for p in (header.strip("\n"), "\n".join(imports)) if p]
        text = "\n\n".join(parts)
        text = (text + gap if text else "") + body
        return FileChange(target, None, [TextChange(0, 0, text.rstrip("\n") + "\n")])
    present = {line.strip() for line in existing.split("\n")}
    missing = [line for line in imports if line.strip() not in present]
    changes = []
    if missing:
        lines = existing.split("\n")
        last = max((i for i, line in enumerate(lines) if _IMPORTISH.match(line)), default=-1)
        offset = sum(len(line) + 1 for line in lines[: last + 1]) if last >= 0 else _after_header(existing)
        changes.append(TextChange(offset, offset, "\n".join(missing) + "\n"))
    end = len(existing)
    lead = ("" if existing.endswith("\n") or not existing else "\n") + (gap[1:] if existing.strip() else "")
    changes.append(TextChange(end, end, lead + body + "\n"))
    return FileChange(target, existing, changes)


_IMPORTISH = re.compile(r"^(import |from \S+ import |#include|use |const .*= require\()")


def _after_header(text: str) -> int:
    """Offset after a leading package clause (Go/Java), else 0."""
    match = re.search(r"^package [^\n]*\n", text, re.M)
    return match.end() if match else 0


# -- Python ----------------------------------------------------------------------------------------

_PY_IMPORT = re.compile(r"^(import \S|from \S+ import )")


def _python(language, path, text, code, names, root, target, existing):
    module = python_module(path, root)
    if module != path.stem:  # the model guessed a bare module name
        code = re.sub(rf"^from {re.escape(path.stem)} import ", f"from {module} import ", code, flags=re.M)
        code = re.sub(rf"^import {re.escape(path.stem)}$", f"import {module} as {path.stem}", code, flags=re.M)
    imports, body = _split_imports(code, _PY_IMPORT)
    has_target = any(re.match(rf"^(from {re.escape(module)} import |import {re.escape(module)}\b)", line)
                     for line in imports)
    if not has_target:
        imports.append(f"from {module} import {', '.join(names)}" if names else f"import {module}")
    return _merge(target, existing, imports, body, gap="\n\n\n")


# -- JavaScript / TypeScript -----------------------------------------------------------------------

_JS_IMPORT = re.compile(r"^(import |const .*= require\(|let .*= require\(|var .*= require\()")


def _javascript(language, path, text, code, names, root, target, existing):
    imports, body = _split_imports(code, _JS_IMPORT)
    relative = f"./{path.stem}"
    if not any(f"'{relative}" in line or f'"{relative}' in line for line in imports):
        wanted = ", ".join(names)
        if language == "javascript" and "module.exports" in text and "export " not in text:
            imports.append(f'const {{ {wanted} }} = require("{relative}");' if names else f'const {path.stem} = require("{relative}");')
        else:
            imports.append(f'import {{ {wanted} }} from "{relative}";' if names else f'import * as {path.stem} from "{relative}";')
    return _merge(target, existing, imports, body)


# -- Go -------------------------------------------------------------------------------------------


def _go_package(text: str) -> str:
    match = re.search(r"^package\s+(\w+)", text, re.M)
    return match.group(1) if match else "main"


def _go(language, path, text, code, names, root, target, existing):
    package = _go_package(text)
    code = re.sub(r"^package\s+\w+\s*\n", "", code, flags=re.M)
    paths = []
    for block in re.findall(r"^import\s*\((.*?)\)", code, flags=re.M | re.S):
        paths += re.findall(r'^\s*(\w+\s+)?("[^"]+")', block, flags=re.M)
    paths += re.findall(r'^import\s+(\w+\s+)?("[^"]+")\s*$', code, flags=re.M)
    code = re.sub(r"^import\s*\(.*?\)\s*\n", "", code, flags=re.M | re.S)
    code = re.sub(r'^import\s+(\w+\s+)?"[^"]+"\s*\n', "", code, flags=re.M)
    specs = [f"{alias or ''}{p}".strip() for alias, p in paths]
    if "testing.T" in code and '"testing"' not in specs:
        specs.insert(0, '"testing"')
    body = code.strip("\n")
    if existing is None:
        header = f"package {package}\n"
        imports = [f"import {spec}" for spec in specs]
        return _merge(target, None, imports, body, header)
    present = set(re.findall(r'"[^"]+"', "\n".join(re.findall(r"^import[^\n]*(?:\([^)]*\))?", existing, re.M | re.S))))
    missing = [f"import {spec}" for spec in specs if spec.split()[-1] not in present]
    changes = []
    if missing:
        at = _after_header(existing)
        changes.append(TextChange(at, at, "\n" + "\n".join(missing) + "\n"))
    end = len(existing)
    changes.append(TextChange(end, end, ("" if existing.endswith("\n") else "\n") + "\n" + body + "\n"))
    return FileChange(target, existing, changes)


# -- Rust -----------------------------------------------------------------------------------------


def _rust_test_items(code: str) -> str:
    """The items of the model's tests, unwrapped from a ``mod tests { … }`` it may have written."""
    tree = parse("rust", code)
    if tree is not None:
        source = code.encode("utf-8", "surrogatepass")
        for node in tree.root_node.named_children:
            name = node.child_by_field_name("name")
            body = node.child_by_field_name("body")
            if node.type == "mod_item" and name is not None and body is not None:
                inner = code[to_char(source, body.start_byte, code) + 1: to_char(source, body.end_byte, code) - 1]
                code = code[: to_char(source, node.start_byte, code)] + textwrap.dedent(inner.strip("\n")) + \
                    code[to_char(source, node.end_byte, code):]
                break
    code = re.sub(r"^#\[cfg\(test\)\]\s*\n", "", code, flags=re.M)
    code = re.sub(r"^\s*use super::\*;\s*\n", "", code, flags=re.M)
    return textwrap.dedent(code).strip("\n")


def _rust(language, path, text, code, names, root, target, existing):
    items = _rust_test_items(code)
    indented = textwrap.indent(items, "    ", lambda line: bool(line.strip()))
    tree = parse("rust", text)
    source = text.encode("utf-8", "surrogatepass")
    if tree is not None:
        for node in tree.root_node.named_children:
            name = node.child_by_field_name("name")
            body = node.child_by_field_name("body")
            if node.type == "mod_item" and name is not None and name.text == b"tests" and body is not None:
                close = to_char(source, body.end_byte, text) - 1
                line_start = text.rfind("\n", 0, close) + 1
                at = line_start if not text[line_start:close].strip() else close
                return FileChange(path, text, [TextChange(at, at, "\n" + indented + "\n")])
    end = len(text)
    block = f"#[cfg(test)]\nmod tests {{\n    use super::*;\n\n{indented}\n}}\n"
    return FileChange(path, text, [TextChange(end, end, ("" if text.endswith("\n") else "\n") + "\n" + block)])


# -- Java -----------------------------------------------------------------------------------------

_JAVA_IMPORT = re.compile(r"^import\s")
JUNIT_IMPORTS = ["import org.junit.jupiter.api.Test;", "import static org.junit.jupiter.api.Assertions.*;"]


def _java_package(text: str) -> str:
    match = re.search(r"^\s*package\s+([\w.]+)\s*;", text, re.M)
    return match.group(1) if match else ""


def _java(language, path, text, code, names, root, target, existing):
    package = _java_package(text)
    class_name = target.stem
    code = re.sub(r"^\s*package\s+[\w.]+\s*;\s*\n", "", code, flags=re.M)
    imports, body = _split_imports(code, _JAVA_IMPORT)
    for line in JUNIT_IMPORTS:
        if line not in imports and not (line.startswith("import static") and any("Assertions" in i for i in imports)):
            imports.append(line)
    match = re.search(r"\bclass\s+(\w+)", body)
    if match is None:  # bare methods: wrap them
        body = f"class {class_name} {{\n{textwrap.indent(body, '    ', lambda l: bool(l.strip()))}\n}}"
    elif match.group(1) != class_name:
        body = body[: match.start(1)] + class_name + body[match.end(1):]
    if existing is None:
        header = f"package {package};\n" if package else ""
        return _merge(target, None, imports, body, header)
    members = body[body.index("{", body.index(f"class {class_name}")) + 1: body.rindex("}")].strip("\n")
    close = existing.rindex("}")
    present = {line.strip() for line in existing.split("\n")}
    missing = [line for line in imports if line.strip() not in present]
    changes = []
    if missing:
        lines = existing.split("\n")
        last = max((i for i, line in enumerate(lines) if line.startswith(("import ", "package "))), default=-1)
        at = sum(len(line) + 1 for line in lines[: last + 1])
        changes.append(TextChange(at, at, "\n".join(missing) + "\n"))
    line_start = existing.rfind("\n", 0, close) + 1
    at = line_start if not existing[line_start:close].strip() else close
    changes.append(TextChange(at, at, "\n" + members.rstrip() + "\n"))
    return FileChange(target, existing, changes)


# -- C / C++ --------------------------------------------------------------------------------------

_C_INCLUDE = re.compile(r"^#include\s")
_C_TEST_FN = re.compile(r"^(?:static\s+)?void\s+(test\w*)\s*\(\s*(?:void)?\s*\)", re.M)


def _strip_main(code: str) -> str:
    match = re.search(r"^int\s+main\s*\([^)]*\)\s*\{", code, re.M)
    if match is None:
        return code
    depth, i = 0, match.end() - 1
    while i < len(code):
        depth += {"{": 1, "}": -1}.get(code[i], 0)
        if depth == 0:
            return (code[: match.start()] + code[i + 1:]).strip("\n")
        i += 1
    return code[: match.start()].strip("\n")


def _c(language, path, text, code, names, root, target, existing):
    header = next((path.with_suffix(s) for s in (".h", ".hpp", ".hh") if path.with_suffix(s).is_file()), None)
    included = header if header is not None else path
    relative = Path(*([".."] * len(target.parent.relative_to(root).parts)), included.relative_to(root)) \
        if target.parent.is_relative_to(root) and included.is_relative_to(root) else included
    own = f'#include "{relative.as_posix()}"'
    assert_include = "#include <cassert>" if language == "cpp" else "#include <assert.h>"
    imports, body = _split_imports(code, _C_INCLUDE)
    imports = [line for line in imports if not re.search(rf'"[^"]*{re.escape(included.name)}"', line)]
    if not any("assert" in line for line in imports):
        imports.insert(0, assert_include)
    imports.append(own)
    tests = _C_TEST_FN.findall(body)
    if existing is None:
        if not re.search(r"\bmain\s*\(", body):
            calls = "".join(f"    {name}();\n" for name in tests)
            body += f"\n\nint main(void) {{\n{calls}    return 0;\n}}"
        return _merge(target, None, imports, body)
    body = _strip_main(body)
    present = {line.strip() for line in existing.split("\n")}
    missing = [line for line in imports if line.strip() not in present]
    changes = []
    if missing:
        lines = existing.split("\n")
        last = max((i for i, line in enumerate(lines) if line.startswith("#include")), default=-1)
        at = sum(len(line) + 1 for line in lines[: last + 1])
        changes.append(TextChange(at, at, "\n".join(missing) + "\n"))
    main = re.search(r"^int\s+main\s*\(", existing, re.M)
    at = main.start() if main else len(existing)
    changes.append(TextChange(at, at, body + "\n\n"))
    if main:
        ret = existing.find("return 0;", main.start())
        if ret != -1:
            line_start = existing.rfind("\n", 0, ret) + 1
            indent = existing[line_start:ret]
            changes.append(TextChange(line_start, line_start, "".join(f"{indent}{n}();\n" for n in tests)))
    return FileChange(target, existing, changes)
