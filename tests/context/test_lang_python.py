"""PythonSupport on small workspaces built in tmp_path, and on the real standard library."""

from __future__ import annotations

import textwrap

import sysconfig
from pathlib import Path

import pytest
from workspaces import DiskWorkspace, write
from workspaces import parse as shared_parse

from code_llama_ls.context.base import Import, ParsedFile, Reference

from code_llama_ls.context.lang_python import PythonSupport, python_search_paths

PY = PythonSupport()
LANGUAGES = ("python",)


def parse(text: str, path: Path = Path("/virtual/mod.py")) -> ParsedFile:
    return shared_parse(text, path)

STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, DiskWorkspace]:
    write(tmp_path, {
        "app/__init__.py": """
            from .codec import Decoder, encode
            from .extra import *
            __all__ = ["Decoder", "encode", "helper"]
            """,
        "app/codec.py": """
            import os.path as osp
            from . import util
            from .util import clamp as _clamp

            DEFAULT_LIMIT = 10


            @util.traced
            def encode(value, *,
                       limit=DEFAULT_LIMIT):
                \"\"\"Encode ``value``.

                Long explanation that a skeleton leaves out.
                \"\"\"
                return _clamp(value, limit)


            class Decoder(object):
                \"\"\"Decodes things.\"\"\"
                strict = True
                _cache = {}

                def __init__(self, strict=True):
                    self.strict = strict

                @property
                def name(self):
                    '''The decoder's name.'''
                    return "decoder"

                def decode(self, text,
                           start=0):
                    \"\"\"Decode ``text`` from ``start``.

                    More.
                    \"\"\"
                    secret_body_marker = 1
                    return text[start:]

                def _private(self):
                    return 1
            """,
        "app/util.py": """
            def clamp(value, limit):
                return min(value, limit)

            def traced(fn):
                return fn
            """,
        "app/extra.py": """
            __all__ = ["helper"]

            def helper(x):
                \"\"\"Help.\"\"\"
                return x

            def hidden(x):
                return x
            """,
        "app/sub/__init__.py": "",
        "app/sub/deep.py": """
            from ..codec import Decoder
            from .. import util
            from ...outside import nothing
            """,
        "app/plugins/__init__.py": "",
        "app/plugins/loader.py": """
            def load():
                pass
            """,
        "app/stubbed.py": "def typed(x): return x\n",
        "app/stubbed.pyi": "def typed(x: int) -> int: ...\n",
        "main.py": """
            import app.codec as c
            import app.sub.deep
            from app import Decoder, helper
            from app.plugins import loader

            def run():
                from app.util import clamp
                return c.encode(1)
            """,
    })
    return tmp_path, DiskWorkspace([tmp_path], LANGUAGES, {"python": list(python_search_paths())})


# -- imports ---------------------------------------------------------------------------------


def test_imports_every_form_including_inside_functions() -> None:
    parsed = parse(textwrap.dedent("""
        import os
        import a.b
        import a.b as c, sys
        from x import y, z as w
        from . import m
        from ..pkg.mod import n
        from m import *
        from __future__ import annotations

        def f():
            from .lazy import thing
        """))
    got = PY.imports(parsed.tree, parsed.source)
    assert [(i.module, i.name, i.alias, i.level) for i in got] == [
        ("os", None, None, 0),
        ("a.b", None, "a.b", 0),  # binds a (next entry), not b
        ("a", None, None, 0),  # what ``import a.b`` binds
        ("a.b", None, "c", 0),
        ("sys", None, None, 0),
        ("x", "y", None, 0),
        ("x", "z", "w", 0),
        ("", "m", None, 1),
        ("pkg.mod", "n", None, 2),
        ("m", "*", None, 0),
        ("__future__", "annotations", None, 0),
        ("lazy", "thing", None, 1),
    ]
    assert [i.local_name for i in got[5:8]] == ["y", "w", "m"]
    assert got[-1].line == 11


def test_imports_with_parenthesised_names_and_broken_code() -> None:
    parsed = parse("from x import (a,\n    b as c)\ndef f(:\n    import q\n")
    got = PY.imports(parsed.tree, parsed.source)
    assert ("x", "a", None) in [(i.module, i.name, i.alias) for i in got]
    assert ("x", "b", "c") in [(i.module, i.name, i.alias) for i in got]


# -- scopes ----------------------------------------------------------------------------------


def _at(text: str, marker: str = "|") -> tuple[ParsedFile, int]:
    offset = text.index(marker)
    parsed = parse(text[:offset] + text[offset + 1:])
    return parsed, len(text[:offset].encode())


def test_scopes_module_class_method_with_verbatim_headers() -> None:
    parsed, offset = _at(textwrap.dedent("""
        import os

        @decorator
        class Store(Base,
                    metaclass=Meta):
            x = 1

            @staticmethod
            async def fetch(key: str,
                            default=None) -> bytes:
                value = key
                return va|lue
        """))
    scopes = PY.scopes(parsed.tree, parsed.source, offset)
    assert [(s.kind, s.name) for s in scopes] == [("module", ""), ("class", "Store"), ("method", "fetch")]
    assert scopes[1].header == "class Store(Base,\n            metaclass=Meta):"
    assert scopes[2].header == "async def fetch(key: str,\n                    default=None) -> bytes:"
    assert scopes[0].start_byte == 0 and scopes[0].end_byte == len(parsed.source)
    assert scopes[1].start_byte < scopes[2].start_byte < offset < scopes[2].end_byte <= scopes[1].end_byte


def test_scopes_nested_function_and_blank_line_after_body() -> None:
    text = textwrap.dedent("""
        def outer(a):
            def inner(b):
                return b
            |
        def after():
            pass
        """)
    parsed, offset = _at(text)
    assert [s.name for s in PY.scopes(parsed.tree, parsed.source, offset)] == ["", "outer"]
    parsed, offset = _at(text.replace("return b\n    |", "return b\n        |"))
    assert [s.name for s in PY.scopes(parsed.tree, parsed.source, offset)] == ["", "outer", "inner"]
    parsed, offset = _at(text.replace("return b\n    |", "return b\n|"))
    assert [s.name for s in PY.scopes(parsed.tree, parsed.source, offset)] == [""]


def test_scopes_survive_code_being_typed() -> None:
    parsed, offset = _at(textwrap.dedent("""
        class A:
            def f(self, a):
                x = foo(
            def g(self):
                pa|ss
        """))
    scopes = PY.scopes(parsed.tree, parsed.source, offset)
    assert [s.name for s in scopes] == ["", "A", "g"]
    assert scopes[-1].header.startswith("def g(self)")

    parsed, offset = _at("def f(a):\n    if a:\n        return os.path.join(a, |\n    return 2\n")
    assert [s.name for s in PY.scopes(parsed.tree, parsed.source, offset)] == ["", "f"]


# -- references ------------------------------------------------------------------------------


def test_references_chains_nearest_first_deduplicated() -> None:
    text = textwrap.dedent("""
        import os
        def f(path, *args, key=DEFAULT):
            total = len(args)
            client.session.get(path)
            os.path.join(path, "x")
            print(os.path.join(key))
            helper(obj.method(total), flag=True)
            |
        """)
    parsed, offset = _at(text)
    cursor_line = text[:text.index("|")].count("\n")
    refs = PY.references(parsed.tree, parsed.source, 0, offset, cursor_line)
    parts = [r.parts for r in refs]
    assert parts[:2] in ([("helper",), ("obj", "method")], [("obj", "method"), ("helper",)])
    assert ("os", "path", "join") in parts and parts.count(("os", "path", "join")) == 1
    assert ("client", "session", "get") in parts
    assert ("DEFAULT",) in parts
    for noise in [("len",), ("print",), ("path",), ("args",), ("key",), ("flag",), ("f",), ("total",), ("os",)]:
        assert noise not in parts, noise
    by_parts = {r.parts: r for r in refs}
    assert by_parts[("helper",)].distance == 1
    assert by_parts[("os", "path", "join")].distance == 2  # the nearer of its two uses
    assert [r.distance for r in refs] == sorted(r.distance for r in refs)


def test_references_ignore_the_word_being_typed() -> None:
    base = "import os\nresult = compute(1)\nos.path.jo"
    seen = []
    for end in range(len(base) - 2, len(base) + 1):  # "os.path.j", "os.path.jo" … typed so far
        parsed = parse(base[:end])
        seen.append(PY.references(parsed.tree, parsed.source, 0, end, 2))
    assert seen[0] == seen[1] == seen[2]
    assert [r.parts for r in seen[0]] == [("os", "path"), ("compute",)]
    done = parse(base + "in(")
    parts = [r.parts for r in PY.references(done.tree, done.source, 0, len(done.source), 2)]
    assert parts[0] == ("os", "path", "join")
    typing = parse("x = 1\nhelp_me")
    assert PY.references(typing.tree, typing.source, 0, len(typing.source), 1) == []
    assert PY.references(typing.tree, typing.source, 0, len(typing.source) + 1, 1) == [Reference(("help_me",), 0)]


# -- resolution ------------------------------------------------------------------------------


def test_resolve_absolute_relative_packages_submodules_and_stubs(project) -> None:
    root, ws = project
    main = root / "main.py"
    deep = root / "app/sub/deep.py"
    assert PY.resolve(Import("app.codec", alias="c"), main, ws)[0] == root / "app/codec.py"
    assert PY.resolve(Import("app.sub.deep"), main, ws)[0] == root / "app/sub/deep.py"
    assert PY.resolve(Import("app", "Decoder"), main, ws)[0] == root / "app/__init__.py"
    assert PY.resolve(Import("app.plugins", "loader"), main, ws)[0] == root / "app/plugins/loader.py"
    assert PY.resolve(Import("app.util", "clamp"), main, ws)[0] == root / "app/util.py"
    assert PY.resolve(Import("app.stubbed", "typed"), main, ws)[:2] == [root / "app/stubbed.pyi", root / "app/stubbed.py"]
    assert PY.resolve(Import("codec", "Decoder", level=2), deep, ws)[0] == root / "app/codec.py"
    assert PY.resolve(Import("", "util", level=2), deep, ws)[0] == root / "app/util.py"
    assert PY.resolve(Import("", "deep", level=1), deep, ws)[0] == root / "app/sub/deep.py"
    assert PY.resolve(Import("outside", "nothing", level=3), deep, ws) == []
    assert PY.resolve(Import("no_such_module_anywhere", "x"), main, ws) == []


def test_resolve_the_standard_library_statically(project) -> None:
    root, ws = project
    main = root / "main.py"
    assert PY.resolve(Import("json", "loads"), main, ws)[0] == STDLIB / "json/__init__.py"
    assert PY.resolve(Import("collections", "OrderedDict"), main, ws)[0] == STDLIB / "collections/__init__.py"
    assert PY.resolve(Import("json", "decoder"), main, ws)[0] == STDLIB / "json/decoder.py"
    assert PY.resolve(Import("os.path"), main, ws)[0].stem in {"posixpath", "ntpath"}
    assert PY.resolve(Import("xml.etree.ElementTree", alias="ET"), main, ws)[0] == STDLIB / "xml/etree/ElementTree.py"


def test_search_paths_come_from_sysconfig() -> None:
    paths = python_search_paths()
    assert Path(sysconfig.get_paths()["stdlib"]) in paths
    assert all(p.is_dir() for p in paths)


# -- skeletons -------------------------------------------------------------------------------


def test_function_skeleton_signature_first_docstring_body_elided(project) -> None:
    root, ws = project
    codec = ws.parsed(root / "app/codec.py")
    d = PY.definition(codec, "encode", ws)
    assert d is not None and d.path == root / "app/codec.py"
    lines = d.skeleton.split("\n")
    assert lines[0] == "def encode(value, *,"
    assert lines[1] == "           limit=DEFAULT_LIMIT):"
    assert d.start_line == codec.text.split("\n").index("def encode(value, *,")
    assert "@util.traced" in d.skeleton
    assert '"""Encode ``value``.' in d.skeleton
    assert "Long explanation" not in d.skeleton
    assert "return _clamp" not in d.skeleton
    assert lines[-1] == "    ..."
    compile(d.skeleton, "skeleton", "exec")


def test_class_skeleton_members_signatures_only(project) -> None:
    root, ws = project
    codec = ws.parsed(root / "app/codec.py")
    d = PY.definition(codec, "Decoder", ws)
    assert d is not None
    lines = d.skeleton.split("\n")
    assert lines[0] == "class Decoder(object):"
    assert '    """Decodes things."""' in lines
    assert "    strict = True" in lines
    assert "    def __init__(self, strict=True): ..." in lines  # no docstring: elided on its line
    assert "    @property" in lines and "    def name(self):" in lines
    assert "        '''The decoder's name.'''" in lines
    assert "    def decode(self, text,\n               start=0):" in d.skeleton
    assert '        """Decode ``text`` from ``start``."""' in lines
    assert "secret_body_marker" not in d.skeleton and "self.strict = strict" not in d.skeleton
    assert "_private" not in d.skeleton and "_cache" not in d.skeleton
    compile(d.skeleton, "skeleton", "exec")


def test_definition_follows_reexports(project) -> None:
    root, ws = project
    init = ws.parsed(root / "app/__init__.py")
    d = PY.definition(init, "Decoder", ws)
    assert d is not None and d.path == root / "app/codec.py" and d.skeleton.startswith("class Decoder(object):")
    star = PY.definition(init, "helper", ws)
    assert star is not None and star.path == root / "app/extra.py" and star.skeleton.startswith("def helper(x):")
    assert PY.definition(init, "hidden", ws) is None  # not in extra's __all__
    assert PY.definition(init, "missing", ws) is None
    aliased = PY.definition(ws.parsed(root / "app/codec.py"), "_clamp", ws)
    assert aliased is not None and aliased.path == root / "app/util.py"
    assert aliased.skeleton.startswith("def clamp(value, limit):")


def test_definition_stops_after_three_hops(tmp_path: Path) -> None:
    write(tmp_path, {
        "p/__init__.py": "",
        "p/a.py": "from .b import thing\n",
        "p/b.py": "from .c import thing\n",
        "p/c.py": "from .d import thing\n",
        "p/d.py": "from .e import thing\n",
        "p/e.py": "def thing():\n    pass\n",
    })
    ws = DiskWorkspace([tmp_path], LANGUAGES)
    assert PY.definition(ws.parsed(tmp_path / "p/b.py"), "thing", ws).path == tmp_path / "p/e.py"
    assert PY.definition(ws.parsed(tmp_path / "p/a.py"), "thing", ws) is None


def test_definitions_under_if_and_try_and_assignments() -> None:
    parsed = parse(textwrap.dedent("""
        import sys
        try:
            from _speedups import fast
        except ImportError:
            def fast(x):
                return x
        if sys.platform == "win32":
            def native(path):
                '''Windows.'''
                return path
        else:
            def native(path):
                return path
        LIMIT = 10
        def py_scan(s):
            return s
        scan = c_scan or py_scan
        """))
    ws = DiskWorkspace([], LANGUAGES)
    fast = PY.definition(parsed, "fast", ws)
    assert fast.skeleton.split("\n")[0] == "    def fast(x):"
    native = PY.definition(parsed, "native", ws)
    assert native.skeleton.split("\n")[0] == "    def native(path):" and "Windows." in native.skeleton
    assert PY.definition(parsed, "LIMIT", ws).skeleton == "LIMIT = 10"
    scan = PY.definition(parsed, "scan", ws)
    assert scan.skeleton.split("\n")[:2] == ["scan = c_scan or py_scan", "def py_scan(s):"]


def test_member_and_outline(project) -> None:
    root, ws = project
    codec = ws.parsed(root / "app/codec.py")
    method = PY.member(codec, "Decoder", "decode")
    assert method is not None
    assert method.skeleton.split("\n")[:2] == ["    def decode(self, text,", "               start=0):"]
    assert "secret_body_marker" not in method.skeleton
    assert PY.member(codec, "Decoder", "strict").skeleton == "    strict = True"
    assert PY.member(codec, "Decoder", "nothing") is None
    assert PY.member(codec, "encode", "x") is None
    outline = PY.outline(codec)
    assert outline.split("\n") == [
        "def encode(value, *,",
        "           limit=DEFAULT_LIMIT): ...",
        "class Decoder(object): ...",
    ]


def test_stdlib_definitions_without_importing(project) -> None:
    root, ws = project
    main = root / "main.py"
    json_init = ws.parsed(PY.resolve(Import("json", "loads"), main, ws)[0])
    loads = PY.definition(json_init, "loads", ws)
    assert loads.skeleton.split("\n")[0] == "def loads(s, *, cls=None, object_hook=None, parse_float=None,"
    decoder = PY.definition(json_init, "JSONDecoder", ws)  # re-exported from json.decoder
    assert decoder.path == STDLIB / "json/decoder.py"
    assert decoder.skeleton.startswith("class JSONDecoder(object):")
    collections = ws.parsed(PY.resolve(Import("collections", "OrderedDict"), main, ws)[0])
    ordered = PY.definition(collections, "OrderedDict", ws)
    assert ordered.skeleton.split("\n")[0] == "class OrderedDict(dict):"
    assert "    def popitem(self, last=True):" in ordered.skeleton
    join = PY.definition(ws.parsed(PY.resolve(Import("os.path", "join"), main, ws)[0]), "join", ws)
    assert join.skeleton.startswith("def join(")
    # only files were read: nothing of what was resolved got imported
    assert all(p.suffix in {".py", ".pyi"} for p in ws.parsed_paths)


def test_references_scope_aware_local_names() -> None:
    text = textwrap.dedent("""
        import getopt, warnings
        from gettext import gettext as _
        class Parser:
            def __init__(self, warnings=None):
                self.warnings = warnings
            def getopt(self, args):
                opts = getopt.getopt(args, "")
                with warnings.catch_warnings():
                    label = _("usage")
                    opts.sort()
                |
        """)
    parsed, offset = _at(text)
    cursor_line = text[:text.index("|")].count("\n")
    parts = [r.parts for r in PY.references(parsed.tree, parsed.source, 0, offset, cursor_line)]
    assert ("getopt", "getopt") in parts  # the method's own name does not shadow the module inside it
    assert ("warnings", "catch_warnings") in parts  # another method's parameter does not either
    assert ("_",) in parts
    assert ("opts", "sort") not in parts and ("args",) not in parts
