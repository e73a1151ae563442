"""What an action's prompt may hold about a range comes from the context engine alone: the
enclosing scope and the import lines (also without an engine), and the skeletons it uses."""

from __future__ import annotations

from pathlib import Path

from code_llama_ls.actions.prompt import gather_context
from code_llama_ls.context.base import RangeContext
from code_llama_ls.context.engine import ContextEngine, scope_and_imports
from code_llama_ls.documents import DocumentStore
from code_llama_ls.settings import Settings

SHAPES = 'class Circle:\n    """A circle."""\n\n    def area(self) -> float:\n        return 3.14 * self.r ** 2\n'
APP = ("import os\nfrom pkg.shapes import Circle\nimport os\n\n\n"
       "def main():\n    c = Circle()\n    return c.area()\n")


def open_app(root: Path, settings: Settings):
    for name, text in {"pkg/__init__.py": "", "pkg/shapes.py": SHAPES, "pkg/app.py": APP}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    documents = DocumentStore()
    document = documents.open((root / "pkg/app.py").as_uri(), APP, 1)
    return document, ContextEngine(lambda: settings, documents, [root])


def test_about_range_holds_scope_imports_and_skeletons(tmp_path):
    document, engine = open_app(tmp_path, Settings())
    start = APP.index("c = Circle()")
    end = start + len("c = Circle()")
    about = engine.about_range(document, start, end)
    assert about.scope == "def main():\n    c = Circle()\n    return c.area()"
    assert about.imports == "import os\nfrom pkg.shapes import Circle"  # each line once
    assert [(block.path, block.body.split("\n")[0]) for block in about.definitions] == [
        ("pkg/shapes.py", "class Circle:")]
    assert gather_context(document, start, end, engine).skeletons == tuple(
        (block.path, block.body) for block in about.definitions)


def test_without_an_engine_or_with_context_off_the_scope_and_imports_stay(tmp_path):
    document, engine = open_app(tmp_path, Settings(context_enabled=False))
    start = APP.index("return c.area()")
    end = start + len("return c.area()")
    about = engine.about_range(document, start, end)
    assert about.definitions == ()
    assert about == scope_and_imports(document, start, end)
    from_file = gather_context(document, start, end, None)
    assert (from_file.scope, from_file.imports, from_file.skeletons) == (about.scope, about.imports, ())


def test_a_range_as_large_as_its_scope_or_in_an_unknown_language_has_none(tmp_path):
    document, _ = open_app(tmp_path, Settings())
    start = APP.index("def main")
    assert scope_and_imports(document, start, len(APP)).scope == ""
    plain = DocumentStore().open((tmp_path / "notes.txt").as_uri(), "just text\n", 1)
    assert scope_and_imports(plain, 0, 4) == RangeContext()
