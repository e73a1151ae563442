"""GoSupport on a small Go module with two packages, built in tmp_path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from workspaces import DiskWorkspace, write
from workspaces import parse as shared_parse

from code_llama_ls.context.base import Import, ParsedFile
from code_llama_ls.context.lang_go import GoSupport, package_name_guess, parse_go_mod


GO = GoSupport()
LANGUAGES = ("go",)


def parse(text: str, path: Path = Path("/virtual/main.go")) -> ParsedFile:
    return shared_parse(text, path)


STORE = """
    // Package store keeps items.
    package store

    import "errors"

    // ErrMissing is returned for unknown keys.
    var ErrMissing = errors.New("missing")

    // Store holds items by key.
    // It is safe for one goroutine.
    type Store struct {
    \titems map[string]int // the items
    \tName  string
    }

    // New makes a Store.
    func New(name string) *Store {
    \treturn &Store{items: map[string]int{}, Name: name}
    }

    // Get returns an item.
    func (s *Store) Get(key string) (int, error) {
    \tv, ok := s.items[key]
    \tif !ok {
    \t\treturn 0, ErrMissing
    \t}
    \treturn v, nil
    }

    func (s Store) Len() int { return len(s.items) }

    type Getter interface {
    \tGet(key string) (int, error)
    }
    """


@pytest.fixture
def module(tmp_path: Path) -> tuple[Path, DiskWorkspace]:
    write(tmp_path / "project", {
        "go.mod": """
            module example.com/shop

            go 1.22

            require gopkg.in/yaml.v3 v3.0.1

            replace example.com/tools => ../tools
            """,
        "internal/store/store.go": STORE,
        "internal/store/helpers.go": "package store\n\nfunc clamp(x int) int { return x }\n",
        "internal/store/store_test.go": "package store\n",
        "cmd/app/main.go": """
            package main

            import (
            \t"fmt"

            \tst "example.com/shop/internal/store"
            \t"example.com/tools/lint"
            \t"gopkg.in/yaml.v3"
            \t. "strings"
            \t_ "embed"
            )

            func main() {
            \ts := st.New("x")
            \tv, err := s.Get("k")
            \tfmt.Println(v, err, yaml.Marshal, lint.Check, ToUpper("a"))
            }
            """,
    })
    write(tmp_path, {"tools/lint/lint.go": "package lint\n\nfunc Check() {}\n"})
    write(tmp_path / "goroot", {"strings/strings.go": "package strings\n\nfunc ToUpper(s string) string { return s }\n"})
    return tmp_path / "project", DiskWorkspace([tmp_path / "project"], LANGUAGES, {"go": [tmp_path / "goroot"]})


def test_imports_single_grouped_aliased(module):
    root, workspace = module
    main = workspace.parsed(root / "cmd/app/main.go")
    assert GO.imports(main.tree, main.source) == [
        Import("fmt", None, "fmt", line=3),
        Import("example.com/shop/internal/store", None, "st", line=5),
        Import("example.com/tools/lint", None, "lint", line=6),
        Import("gopkg.in/yaml.v3", None, "yaml", line=7),
        Import("strings", "*", None, line=8),
        Import("embed", None, "_", line=9),
    ]
    single = parse('package x\n\nimport "errors"\n')
    assert GO.imports(single.tree, single.source) == [Import("errors", None, "errors", line=2)]


def test_package_name_guess_and_go_mod():
    assert package_name_guess("github.com/mattn/go-sqlite3") == "sqlite3"
    assert package_name_guess("github.com/x/y/v2") == "y"
    assert package_name_guess("gopkg.in/yaml.v3") == "yaml"
    assert parse_go_mod("module a.b/c // note\nreplace (\n  x.y => ./x\n  z v1 => z2 v2\n)\n") == ("a.b/c", {"x.y": "./x"})


def test_resolution_through_go_mod_replace_and_search_paths(module):
    root, workspace = module
    main = root / "cmd/app/main.go"
    store = root / "internal/store"
    assert GO.resolve(Import("example.com/shop/internal/store", alias="st"), main, workspace) == [
        store / "store.go",  # named like the package first, no _test.go
        store / "helpers.go",
    ]
    assert GO.resolve(Import("example.com/tools/lint"), main, workspace) == [root.parent / "tools/lint/lint.go"]
    assert GO.resolve(Import("strings", "*"), main, workspace) == [root.parent / "goroot/strings/strings.go"]
    assert GO.resolve(Import("gopkg.in/yaml.v3"), main, workspace) == []


def test_same_package_files(module):
    root, workspace = module
    store = root / "internal/store"
    assert GO.resolve(Import("."), store / "store.go", workspace) == [store / "helpers.go"]
    assert GO.resolve(Import("."), store / "store_test.go", workspace) == [store / "store.go", store / "helpers.go"]


def test_type_skeleton_includes_its_methods(module):
    root, workspace = module
    store = workspace.parsed(root / "internal/store/store.go")
    found = GO.definition(store, "Store", workspace)
    assert found.skeleton == textwrap.dedent("""\
        // Store holds items by key.
        // It is safe for one goroutine.
        type Store struct {
        \titems map[string]int
        \tName  string
        }
        func (s *Store) Get(key string) (int, error) { ... }
        func (s Store) Len() int { ... }""")
    assert store.text.splitlines()[found.start_line] == "type Store struct {"
    assert GO.definition(store, "New", workspace).skeleton == "// New makes a Store.\nfunc New(name string) *Store { ... }"
    assert GO.definition(store, "ErrMissing", workspace).skeleton == (
        '// ErrMissing is returned for unknown keys.\nvar ErrMissing = errors.New("missing")'
    )
    assert GO.definition(store, "Getter", workspace).skeleton == "type Getter interface {\n\tGet(key string) (int, error)\n}"
    assert GO.definition(store, "Get", workspace) is None  # a method is no top-level name


def test_grouped_declarations():
    parsed = parse("package p\n\ntype (\n\t// A is a.\n\tA int\n\tB struct{ x int }\n)\n\nconst (\n\tX = iota\n\tY\n)\n")
    assert GO.definition(parsed, "B", None).skeleton == "type B struct{ x int }"
    assert GO.definition(parsed, "A", None).skeleton == "// A is a.\ntype A int"
    assert GO.definition(parsed, "Y", None).skeleton == "const (\n\tX = iota\n\tY\n)"


def test_members_and_outline(module):
    root, workspace = module
    store = workspace.parsed(root / "internal/store/store.go")
    assert GO.member(store, "Store", "Get").skeleton == (
        "// Get returns an item.\nfunc (s *Store) Get(key string) (int, error) { ... }"
    )
    assert GO.member(store, "Store", "Name").skeleton == "Name  string"
    assert GO.member(store, "Getter", "Get").skeleton == "Get(key string) (int, error)"
    assert GO.member(store, "Store", "Nope") is None
    outline = GO.outline(store).splitlines()
    assert outline[0] == 'var ErrMissing = errors.New("missing")'
    assert "func New(name string) *Store { ... }" in outline
    assert not any("import" in line or "package" in line for line in outline)


def test_scopes(module):
    root, workspace = module
    store = workspace.parsed(root / "internal/store/store.go")
    scopes = GO.scopes(store.tree, store.source, store.text.index("if !ok"))
    assert [(s.kind, s.name, s.header) for s in scopes] == [
        ("module", "store", "package store"),
        ("method", "Get", "func (s *Store) Get(key string) (int, error) {"),
    ]
    scopes = GO.scopes(store.tree, store.source, store.text.index("Name  string"))
    assert [(s.kind, s.name, s.header) for s in scopes][1:] == [("struct", "Store", "type Store struct {")]


def test_scopes_while_typing():
    parsed = parse("package main\n\nfunc (s *Store) Get() {\n\tgo func() {\n\t\tfor i := range x {\n\t\t\tfmt.")
    assert parsed.tree.root_node.has_error
    scopes = GO.scopes(parsed.tree, parsed.source, len(parsed.source))
    assert [(s.kind, s.name, s.header) for s in scopes] == [
        ("module", "main", "package main"),
        ("method", "Get", "func (s *Store) Get() {"),
        ("closure", "", "go func() {"),
    ]


def test_references(module):
    root, workspace = module
    main = workspace.parsed(root / "cmd/app/main.go")
    end = main.text.index("ToUpper(") + len("ToUpper(")
    refs = GO.references(main.tree, main.source, 0, end, main.text[:end].count("\n"))
    parts = [r.parts for r in refs]
    assert parts[:2] == [("ToUpper",), ("lint", "Check")]
    assert ("st", "New") in parts and ("yaml", "Marshal") in parts and ("fmt", "Println") in parts
    assert ("s",) not in parts and ("v",) not in parts and ("s", "Get") not in parts  # locals
    assert not any(p[0] in ("st", "fmt") and len(p) == 1 for p in parts)  # imports are no references
