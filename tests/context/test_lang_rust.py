"""RustSupport on a small Cargo crate built in tmp_path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from workspaces import DiskWorkspace, write
from workspaces import parse as shared_parse

from code_llama_ls.context.base import Import, ParsedFile
from code_llama_ls.context.lang_rust import RustSupport


RS = RustSupport()
LANGUAGES = ("rust",)


def parse(text: str, path: Path = Path("/virtual/lib.rs")) -> ParsedFile:
    return shared_parse(text, path)


SHAPES = """
    use crate::util::{self, helper as h};
    use super::super::add;

    /// A circle.
    #[derive(Debug, Clone)]
    pub struct Circle {
        /// The radius.
        pub r: f64,
    }

    impl Circle {
        /// Makes one.
        pub fn new(r: f64) -> Self {
            Circle { r }
        }

        pub fn area(&self) -> f64 {
            let factor = h();
            std::f64::consts::PI * self.r * self.r * factor as f64
        }
    }

    impl std::fmt::Display for Circle {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "circle {}", self.r)
        }
    }

    pub trait Shape {
        fn area(&self) -> f64;
        fn name(&self) -> String { "shape".into() }
    }
    """


@pytest.fixture
def crate(tmp_path: Path) -> tuple[Path, DiskWorkspace]:
    write(tmp_path, {
        "Cargo.toml": """
            [package]
            name = "geo-kit"
            version = "0.1.0"
            """,
        "src/lib.rs": """
            //! Geometry.
            pub mod a;
            mod util;
            pub use crate::a::shapes::Circle;

            /// Adds two numbers.
            ///
            /// Really.
            pub fn add(x: i32, y: i32) -> i32 {
                x + y
            }
            """,
        "src/a/mod.rs": """
            pub mod shapes;
            use super::util::helper;
            """,
        "src/a/shapes.rs": SHAPES,
        "src/util.rs": """
            pub fn helper() -> u8 { 1 }
            pub mod deep;
            """,
        "src/util/deep.rs": """
            use super::helper;
            pub const DEPTH: u8 = 2;
            """,
        "src/bin/tool.rs": """
            use geo_kit::Circle;
            mod cli;
            fn main() { let c = Circle::new(1.0); println!("{}", c.area()); }
            """,
        "src/bin/cli.rs": "pub fn run() {}\n",
    })
    return tmp_path, DiskWorkspace([tmp_path], LANGUAGES)


def imports_of(workspace: DiskWorkspace, path: Path) -> list[Import]:
    parsed = workspace.parsed(path)
    return RS.imports(parsed.tree, parsed.source)


def test_imports(crate):
    root, workspace = crate
    assert imports_of(workspace, root / "src/lib.rs") == [
        Import("self::a", None, "a", line=1),
        Import("self::util", None, "util", line=2),
        Import("crate::a::shapes", "Circle", None, line=3),
    ]
    assert imports_of(workspace, root / "src/a/shapes.rs") == [
        Import("crate", "util", None, line=0),
        Import("crate::util", "helper", "h", line=0),
        Import("super::super", "add", None, line=1),
    ]
    parsed = parse("use std::{io::{self, Read}, fmt};\nuse self::q::*;\n")
    assert RS.imports(parsed.tree, parsed.source) == [
        Import("std", "io", None, line=0),
        Import("std::io", "Read", None, line=0),
        Import("std", "fmt", None, line=0),
        Import("self::q", "*", None, line=1),
    ]


def test_resolution_follows_the_module_tree(crate):
    root, workspace = crate
    src = root / "src"

    def resolved(imp: Import, path: str) -> list[Path]:
        return RS.resolve(imp, src / path, workspace)

    assert resolved(Import("self::a", alias="a"), "lib.rs") == [src / "a/mod.rs"]  # mod a; → a/mod.rs
    assert resolved(Import("self::util", alias="util"), "lib.rs") == [src / "util.rs"]  # → util.rs
    assert resolved(Import("self::shapes", alias="shapes"), "a/mod.rs") == [src / "a/shapes.rs"]
    assert resolved(Import("self::deep", alias="deep"), "util.rs") == [src / "util/deep.rs"]  # util.rs owns util/
    assert resolved(Import("crate::a::shapes", "Circle"), "lib.rs") == [src / "a/shapes.rs"]
    assert resolved(Import("crate", "util"), "a/shapes.rs") == [src / "util.rs", src / "lib.rs"]
    assert resolved(Import("super::util", "helper"), "a/mod.rs") == [src / "util.rs"]
    assert resolved(Import("super::super", "add"), "a/shapes.rs") == [src / "lib.rs"]
    assert resolved(Import("super", "helper"), "util/deep.rs") == [src / "util.rs"]
    assert resolved(Import("geo_kit", "Circle"), "bin/tool.rs") == [src / "lib.rs"]  # the crate's own name
    assert resolved(Import("self::cli", alias="cli"), "bin/tool.rs") == [src / "bin/cli.rs"]  # a crate root
    assert resolved(Import("std::collections", "HashMap"), "lib.rs") == []  # external


def test_struct_skeleton_with_impl_blocks_is_exact(crate):
    root, workspace = crate
    shapes = workspace.parsed(root / "src/a/shapes.rs")
    found = RS.definition(shapes, "Circle", workspace)
    assert found.skeleton == textwrap.dedent("""\
        /// A circle.
        #[derive(Debug, Clone)]
        pub struct Circle {
            pub r: f64,
        }
        impl Circle {
            pub fn new(r: f64) -> Self { ... }
            pub fn area(&self) -> f64 { ... }
        }
        impl std::fmt::Display for Circle {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { ... }
        }""")
    assert shapes.text.splitlines()[found.start_line] == "pub struct Circle {"
    assert RS.definition(shapes, "Shape", workspace).skeleton == textwrap.dedent("""\
        pub trait Shape {
            fn area(&self) -> f64;
            fn name(&self) -> String { ... }
        }""")


def test_function_doc_and_pub_use_reexport(crate):
    root, workspace = crate
    lib = workspace.parsed(root / "src/lib.rs")
    assert RS.definition(lib, "add", workspace).skeleton == (
        "/// Adds two numbers.\n///\n/// Really.\npub fn add(x: i32, y: i32) -> i32 { ... }"
    )
    circle = RS.definition(lib, "Circle", workspace)  # pub use crate::a::shapes::Circle
    assert circle.path == root / "src/a/shapes.rs"
    assert RS.definition(lib, "Missing", workspace) is None


def test_members_and_outline(crate):
    root, workspace = crate
    shapes = workspace.parsed(root / "src/a/shapes.rs")
    assert RS.member(shapes, "Circle", "new").skeleton == "/// Makes one.\npub fn new(r: f64) -> Self { ... }"
    assert RS.member(shapes, "Shape", "name").skeleton == "fn name(&self) -> String { ... }"
    assert RS.member(shapes, "Circle", "fmt").skeleton.startswith("fn fmt(&self")
    assert RS.member(shapes, "Circle", "nope") is None
    outline = RS.outline(shapes)
    assert "use crate" not in outline
    assert outline.splitlines()[0] == "pub struct Circle {"
    assert "    pub fn area(&self) -> f64 { ... }" in outline.splitlines()


def test_scopes(crate):
    root, workspace = crate
    shapes = workspace.parsed(root / "src/a/shapes.rs")
    offset = shapes.text.index("std::f64")
    scopes = RS.scopes(shapes.tree, shapes.source, offset)
    assert [(s.kind, s.name, s.header) for s in scopes] == [
        ("module", "", ""),
        ("impl", "Circle", "impl Circle {"),
        ("method", "area", "pub fn area(&self) -> f64 {"),
    ]
    offset = shapes.text.index("write!")
    assert [(s.kind, s.name, s.header) for s in RS.scopes(shapes.tree, shapes.source, offset)][1] == (
        "impl", "Circle", "impl std::fmt::Display for Circle {"
    )


def test_scopes_while_typing():
    text = "fn a() {}\nimpl<T> Display for Foo<T> {\n    fn fmt(&self) {\n        let x = |y| {\n            crate::util::"
    parsed = parse(text)
    assert parsed.tree.root_node.has_error
    scopes = RS.scopes(parsed.tree, parsed.source, len(parsed.source))
    assert [(s.kind, s.name, s.header) for s in scopes] == [
        ("module", "", ""),
        ("impl", "Foo", "impl<T> Display for Foo<T> {"),
        ("method", "fmt", "fn fmt(&self) {"),
        ("closure", "", "let x = |y| {"),
    ]
    refs = [r.parts for r in RS.references(parsed.tree, parsed.source, 0, len(parsed.source), 4)]
    assert ("x",) not in refs  # declared by the `let` being typed


def test_references(crate):
    root, workspace = crate
    shapes = workspace.parsed(root / "src/a/shapes.rs")
    end = shapes.text.index("* factor as f64") + len("* factor")
    refs = RS.references(shapes.tree, shapes.source, 0, end, shapes.text[:end].count("\n"))
    parts = [r.parts for r in refs]
    assert parts[0] == ("self", "r")
    assert ("std", "f64", "consts", "PI") not in parts  # the standard library is not in the workspace
    assert ("h",) in parts
    assert ("factor",) not in parts  # a local, and being typed
    assert ("Circle",) in parts
    assert ("Self",) not in parts and ("util",) not in parts  # builtin noise; use declarations
    tool = workspace.parsed(root / "src/bin/tool.rs")
    refs = [r.parts for r in RS.references(tool.tree, tool.source, 0, len(tool.source), 2)]
    assert ("Circle", "new") in refs and ("c", "area") not in refs  # c is a local
