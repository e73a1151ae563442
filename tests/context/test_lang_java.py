"""JavaSupport on a small Maven-layout project built in tmp_path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from workspaces import DiskWorkspace, write
from workspaces import parse as shared_parse

from code_llama_ls.context.base import Import, ParsedFile
from code_llama_ls.context.lang_java import JavaSupport


JAVA = JavaSupport()
LANGUAGES = ("java",)


def parse(text: str, path: Path = Path("/virtual/A.java")) -> ParsedFile:
    return shared_parse(text, path)


MAIN = "src/main/java/com/ex"


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, DiskWorkspace]:
    write(tmp_path, {
        "pom.xml": "<project/>\n",
        f"{MAIN}/util/Strings.java": """
            package com.ex.util;

            import java.util.List;

            /**
             * String helpers.
             */
            public final class Strings {
                /** The empty string. */
                public static final String EMPTY = "";

                private Strings() {}

                /**
                 * Joins parts.
                 */
                public static String join(List<String> parts, String sep) {
                    StringBuilder b = new StringBuilder();
                    for (String p : parts) {
                        b.append(p).append(sep);
                    }
                    return b.toString();
                }

                public static class Builder {
                    public Builder add(String s) { return this; }
                }
            }
            """,
        f"{MAIN}/util/Shape.java": """
            package com.ex.util;

            public interface Shape {
                double area();
                default String name() { return "shape"; }
            }
            """,
        f"{MAIN}/app/App.java": """
            package com.ex.app;

            import com.ex.util.Strings;
            import com.ex.util.*;
            import static com.ex.util.Strings.join;
            import com.ex.util.Strings.Builder;
            import java.util.List;

            public class App {
                enum Mode { FAST, SLOW; int speed() { return 1; } }

                public static void main(String[] args) {
                    List<String> xs = List.of(args);
                    String s = Strings.join(xs, ",") + Strings.EMPTY;
                    Runnable r = () -> {
                        Helper.log(s.trim());
                    };
                }
            }
            """,
        f"{MAIN}/app/Helper.java": "package com.ex.app;\n\nclass Helper {\n    static void log(String s) {}\n}\n",
        "src/test/java/com/ex/app/AppTest.java": "package com.ex.app;\n\nimport com.ex.util.Shape;\n\nclass AppTest {}\n",
    })
    return tmp_path, DiskWorkspace([tmp_path], LANGUAGES)


def test_imports(project):
    root, workspace = project
    app = workspace.parsed(root / MAIN / "app/App.java")
    assert JAVA.imports(app.tree, app.source) == [
        Import("com.ex.util", "Strings", line=2),
        Import("com.ex.util", "*", line=3),
        Import("com.ex.util.Strings", "join", line=4),
        Import("com.ex.util.Strings", "Builder", line=5),
        Import("java.util", "List", line=6),
    ]


def test_resolution_from_the_package_declaration(project):
    root, workspace = project
    app = root / MAIN / "app/App.java"
    util = root / MAIN / "util"
    assert JAVA.resolve(Import("com.ex.util", "Strings"), app, workspace) == [util / "Strings.java"]
    assert JAVA.resolve(Import("com.ex.util", "*"), app, workspace) == [util / "Shape.java", util / "Strings.java"]
    assert JAVA.resolve(Import("com.ex.util.Strings", "join"), app, workspace) == [util / "Strings.java"]  # static
    assert JAVA.resolve(Import("com.ex.util.Strings", "Builder"), app, workspace) == [util / "Strings.java"]  # nested
    assert JAVA.resolve(Import("java.util", "List"), app, workspace) == []
    # a test source root finds the main one, and its package spans both roots
    test = root / "src/test/java/com/ex/app/AppTest.java"
    assert JAVA.resolve(Import("com.ex.util", "Shape"), test, workspace) == [util / "Shape.java"]
    assert set(JAVA.resolve(Import("."), test, workspace)) == {root / MAIN / "app/App.java", root / MAIN / "app/Helper.java"}
    assert JAVA.resolve(Import("."), app, workspace) == [root / MAIN / "app/Helper.java"]


def test_class_skeleton_is_exact(project):
    root, workspace = project
    strings = workspace.parsed(root / MAIN / "util/Strings.java")
    found = JAVA.definition(strings, "Strings", workspace)
    assert found.skeleton == textwrap.dedent("""\
        /**
         * String helpers.
         */
        public final class Strings {
            public static final String EMPTY = "";
            private Strings() { ... }
            public static String join(List<String> parts, String sep) { ... }
            public static class Builder {
                public Builder add(String s) { ... }
            }
        }""")
    assert strings.text.splitlines()[found.start_line] == "public final class Strings {"
    shape = workspace.parsed(root / MAIN / "util/Shape.java")
    assert JAVA.definition(shape, "Shape", workspace).skeleton == textwrap.dedent("""\
        public interface Shape {
            double area();
            default String name() { ... }
        }""")
    # a statically imported method and a nested class are found too
    assert JAVA.definition(strings, "join", workspace).skeleton == (
        "/**\n * Joins parts.\n */\npublic static String join(List<String> parts, String sep) { ... }"
    )
    assert JAVA.definition(strings, "Builder", workspace).skeleton == (
        "public static class Builder {\n    public Builder add(String s) { ... }\n}"
    )


def test_members_and_outline(project):
    root, workspace = project
    strings = workspace.parsed(root / MAIN / "util/Strings.java")
    assert JAVA.member(strings, "Strings", "EMPTY").skeleton == '/** The empty string. */\npublic static final String EMPTY = "";'
    assert JAVA.member(strings, "Builder", "add").skeleton == "public Builder add(String s) { ... }"
    assert JAVA.member(strings, "Strings", "nope") is None
    app = workspace.parsed(root / MAIN / "app/App.java")
    assert JAVA.member(app, "Mode", "speed").skeleton == "int speed() { ... }"
    assert JAVA.outline(app) == textwrap.dedent("""\
        public class App {
            enum Mode { FAST, SLOW; int speed() { ... } }
            public static void main(String[] args) { ... }
        }""")


def test_scopes(project):
    root, workspace = project
    app = workspace.parsed(root / MAIN / "app/App.java")
    scopes = JAVA.scopes(app.tree, app.source, app.text.index("Helper.log"))
    assert [(s.kind, s.name, s.header) for s in scopes] == [
        ("module", "com.ex.app", "package com.ex.app;"),
        ("class", "App", "public class App {"),
        ("method", "main", "public static void main(String[] args) {"),
        ("closure", "", "() -> {"),
    ]
    scopes = JAVA.scopes(app.tree, app.source, app.text.index("return 1;"))
    assert [(s.kind, s.name) for s in scopes][2:] == [("enum", "Mode"), ("method", "speed")]


def test_scopes_while_typing():
    text = "package a;\npublic class A extends B {\n  @Override\n  public void run(int x) {\n    if (x > 0) {\n      foo."
    parsed = parse(text)
    assert parsed.tree.root_node.has_error
    scopes = JAVA.scopes(parsed.tree, parsed.source, len(parsed.source))
    assert [(s.kind, s.name, s.header) for s in scopes] == [
        ("module", "a", "package a;"),
        ("class", "A", "public class A extends B {"),
        ("method", "run", "public void run(int x) {"),
    ]
    refs = [r.parts for r in JAVA.references(parsed.tree, parsed.source, 0, len(parsed.source), 5)]
    assert refs[0] == ("foo",) and ("run",) not in refs and ("B",) in refs


def test_references(project):
    root, workspace = project
    app = workspace.parsed(root / MAIN / "app/App.java")
    end = app.text.index("s.trim()")
    refs = JAVA.references(app.tree, app.source, 0, end, app.text[:end].count("\n"))
    parts = [r.parts for r in refs]
    assert parts[0] == ("Helper", "log")
    assert ("Strings", "join") in parts and ("Strings", "EMPTY") in parts and ("List", "of") in parts
    assert ("xs",) not in parts and ("args",) not in parts  # locals and parameters
    assert ("String",) not in parts  # builtin noise
    assert not any(p[0] == "com" for p in parts)  # import/package names are no references
