"""CSupport (C and C++) on a small C project with include/ headers, and C++ snippets."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from workspaces import DiskWorkspace, write
from workspaces import parse as shared_parse

from code_llama_ls.context.base import Import, ParsedFile
from code_llama_ls.context.lang_c import CSupport


C = CSupport()
LANGUAGES = ("c", "cpp")


def parse(text: str, path: Path = Path("/virtual/x.c")) -> ParsedFile:
    return shared_parse(text, path)


GEOMETRY_H = """
    #ifndef GEOMETRY_H
    #define GEOMETRY_H

    #include <stddef.h>
    #include "config.h"

    #define SQUARE(x) ((x) * (x))

    /* A point in the plane. */
    struct point {
        int x;   /* abscissa */
        int y;
    };

    /**
     * A polygon.
     */
    typedef struct {
        struct point *points;
        size_t count;
    } polygon;

    enum shape_kind { SHAPE_POINT, SHAPE_POLYGON };

    #ifdef __cplusplus
    extern "C" {
    #endif

    /* Area of a polygon (shoelace). */
    double polygon_area(const polygon *p);

    static inline int manhattan(struct point a, struct point b) {
        return abs(a.x - b.x) + abs(a.y - b.y);
    }

    #ifdef __cplusplus
    }
    #endif

    #endif
    """


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, DiskWorkspace]:
    write(tmp_path, {
        "include/geometry.h": GEOMETRY_H,
        "include/config.h": "#define GEO_VERSION 3\n",
        "src/internal.h": "int helper(int v);\n",
        "src/geometry.c": """
            #include "geometry.h"
            #include "internal.h"
            #include "../include/config.h"
            #include <math.h>

            double polygon_area(const polygon *p) {
                double sum = 0;
                for (size_t i = 0; i < p->count; i++) {
                    struct point a = p->points[i];
                    sum += a.x * helper(a.y) + SQUARE(GEO_VERSION);
                }
                return fabs(sum) / 2;
            }
            """,
        "third_party/mathx/mathx.h": "double fabsx(double);\n",
    })
    return tmp_path, DiskWorkspace([tmp_path], LANGUAGES, {"c": (dirs := [tmp_path / "include", tmp_path / "third_party"]), "cpp": dirs})


def test_includes(project):
    root, workspace = project
    source = workspace.parsed(root / "src/geometry.c")
    assert C.imports(source.tree, source.source) == [
        Import("geometry.h", "*", line=0),
        Import("internal.h", "*", line=1),
        Import("../include/config.h", "*", line=2),
        Import("<math.h>", "*", line=3),
    ]
    header = workspace.parsed(root / "include/geometry.h")  # inside the include guard
    assert [i.module for i in C.imports(header.tree, header.source)] == ["<stddef.h>", "config.h"]


def test_include_resolution(project):
    root, workspace = project
    c_file = root / "src/geometry.c"
    assert C.resolve(Import("internal.h", "*"), c_file, workspace) == [root / "src/internal.h"]  # next to it
    assert C.resolve(Import("geometry.h", "*"), c_file, workspace) == [root / "include/geometry.h"]  # include dirs
    assert C.resolve(Import("../include/config.h", "*"), c_file, workspace) == [root / "include/config.h"]
    assert C.resolve(Import("<mathx/mathx.h>", "*"), c_file, workspace) == [root / "third_party/mathx/mathx.h"]
    assert C.resolve(Import("<math.h>", "*"), c_file, workspace) == []
    # an angle include is never looked up next to the including file
    assert C.resolve(Import("<internal.h>", "*"), c_file, workspace) == []
    bare = DiskWorkspace([root], LANGUAGES)  # no include dirs configured: include/ of the roots for quoted ones
    assert C.resolve(Import("geometry.h", "*"), c_file, bare) == [root / "include/geometry.h"]
    assert C.resolve(Import("<geometry.h>", "*"), c_file, bare) == []


def test_header_skeletons_are_exact(project):
    root, workspace = project
    header = workspace.parsed(root / "include/geometry.h")

    def skeleton(name: str) -> str:
        return C.definition(header, name, workspace).skeleton

    assert skeleton("point") == "/* A point in the plane. */\nstruct point {\n    int x;\n    int y;\n};"
    assert skeleton("polygon") == textwrap.dedent("""\
        /**
         * A polygon.
         */
        typedef struct {
            struct point *points;
            size_t count;
        } polygon;""")
    assert skeleton("polygon_area") == "/* Area of a polygon (shoelace). */\ndouble polygon_area(const polygon *p);"
    assert skeleton("manhattan") == "static inline int manhattan(struct point a, struct point b) { ... }"
    assert skeleton("shape_kind") == "enum shape_kind { SHAPE_POINT, SHAPE_POLYGON };"
    assert skeleton("SQUARE") == "#define SQUARE(x) ((x) * (x))"
    found = C.definition(header, "polygon_area", workspace)
    assert header.text.splitlines()[found.start_line] == "double polygon_area(const polygon *p);"
    assert C.member(header, "point", "y").skeleton == "int y;"
    assert C.member(header, "polygon", "count").skeleton == "size_t count;"
    outline = C.outline(header).splitlines()
    assert "double polygon_area(const polygon *p);" in outline
    assert not any(line.startswith("#include") for line in outline)


def test_function_scope_and_references(project):
    root, workspace = project
    source = workspace.parsed(root / "src/geometry.c")
    offset = source.text.index("sum += ")
    scopes = C.scopes(source.tree, source.source, offset)
    assert [(s.kind, s.name, s.header) for s in scopes] == [
        ("module", "", ""),
        ("function", "polygon_area", "double polygon_area(const polygon *p) {"),
    ]
    end = source.text.index("SQUARE(GEO_VERSION)") + len("SQUARE(GEO_VERSION)")
    refs = C.references(source.tree, source.source, 0, end, source.text[:end].count("\n"))
    parts = [r.parts for r in refs]
    assert parts[:3] == [("GEO_VERSION",), ("SQUARE",), ("helper",)]  # the cursor line, right to left
    typing = C.references(source.tree, source.source, 0, end - 1, source.text[:end].count("\n"))
    assert [r.parts for r in typing][:2] == [("SQUARE",), ("helper",)]  # `GEO_VERSION|` is being typed
    assert ("point",) in parts and ("polygon",) in parts
    assert ("a",) not in parts and ("p",) not in parts and ("sum",) not in parts  # locals, parameters
    assert ("a", "x") not in parts


CPP = """
    #include "shape.hpp"

    namespace geo {

    /// A shape.
    class Shape : public Base {
    public:
        explicit Shape(int n);
        virtual ~Shape() = default;
        // The area.
        double area() const { return std::sqrt(n_); }
        static Shape make();
    private:
        int n_;
    };

    template <typename T>
    T maxv(T a, T b) { return a > b ? a : b; }

    }  // namespace geo

    double geo::Shape::perimeter() const {
        auto f = [&](int x) {
            return x + n_;
        };
        return util::scale(f(1)) + this->n_;
    }
    """


def test_cpp_class_namespace_and_out_of_line_members():
    parsed = parse(textwrap.dedent(CPP).lstrip("\n"), Path("/virtual/shape.cpp"))
    assert parsed.language == "cpp"
    assert C.definition(parsed, "Shape", None).skeleton == textwrap.dedent("""\
        /// A shape.
        class Shape : public Base {
        public:
            explicit Shape(int n);
            virtual ~Shape() = default;
            double area() const { ... }
            static Shape make();
        private:
            int n_;
        };""")
    assert C.definition(parsed, "maxv", None).skeleton == "template <typename T>\nT maxv(T a, T b) { ... }"
    assert C.member(parsed, "Shape", "area").skeleton == "// The area.\ndouble area() const { ... }"
    assert C.member(parsed, "Shape", "perimeter").skeleton == "double geo::Shape::perimeter() const { ... }"
    assert C.member(parsed, "geo", "maxv").skeleton.endswith("T maxv(T a, T b) { ... }")
    offset = parsed.text.index("return x + n_")
    scopes = C.scopes(parsed.tree, parsed.source, offset)
    assert [(s.kind, s.name, s.header) for s in scopes] == [
        ("module", "", ""),
        ("function", "perimeter", "double geo::Shape::perimeter() const {"),
        ("closure", "", "[&](int x) {"),
    ]
    offset = parsed.text.index("return std::sqrt")
    assert [(s.kind, s.name) for s in C.scopes(parsed.tree, parsed.source, offset)] == [
        ("module", ""), ("namespace", "geo"), ("class", "Shape"), ("method", "area"),
    ]
    end = parsed.text.index("this->n_") + len("this->n_;")
    refs = [r.parts for r in C.references(parsed.tree, parsed.source, 0, end, parsed.text[:end].count("\n"))]
    assert refs[:2] == [("this", "n_"), ("util", "scale")]
    assert ("geo", "Shape", "perimeter") not in refs  # the definition's own name
    assert ("std", "sqrt") not in refs


def test_cpp_scopes_while_typing():
    text = textwrap.dedent(CPP).lstrip("\n")
    broken = text[:text.index("std::sqrt")] + "std::"
    parsed = parse(broken, Path("/virtual/shape.cpp"))
    assert parsed.tree.root_node.has_error
    scopes = C.scopes(parsed.tree, parsed.source, len(parsed.source))
    assert [(s.kind, s.name, s.header) for s in scopes] == [
        ("module", "", ""),
        ("namespace", "geo", "namespace geo {"),
        ("class", "Shape", "class Shape : public Base {"),
        ("method", "area", "double area() const {"),
    ]


def test_signature_stays_verbatim_with_its_comments():
    parsed = parse("/* Sums. */\nint sum(int a, /* the other */ int b,\n        int c) {\n    /* body comment */\n    return a + b + c;\n}\n")
    found = C.definition(parsed, "sum", None)
    assert found.skeleton == "/* Sums. */\nint sum(int a, /* the other */ int b,\n        int c) { ... }"
    assert parsed.text.splitlines()[found.start_line] in found.skeleton.splitlines()
