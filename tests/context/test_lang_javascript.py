"""JavaScriptSupport (JS, TS, TSX) on a small TypeScript project built in tmp_path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from workspaces import DiskWorkspace, write
from workspaces import parse as shared_parse

from code_llama_ls.context.base import Import, ParsedFile
from code_llama_ls.context.lang_javascript import JavaScriptSupport, loads_lenient


JS = JavaScriptSupport()
LANGUAGES = ("javascript", "typescript", "typescriptreact")


def parse(text: str, path: Path = Path("/virtual/mod.ts"), language: str | None = None) -> ParsedFile:
    return shared_parse(text, path, language)


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, DiskWorkspace]:
    write(tmp_path, {
        "tsconfig.json": """
            {
              // paths for the app
              "compilerOptions": {
                "baseUrl": ".",
                "paths": {
                  "@lib/*": ["src/lib/*"], /* one star */
                  "@app": ["src/app/index.ts"],
                },
              },
            }
            """,
        "src/lib/shapes/circle.ts": """
            import { Shape } from "./shape";

            /**
             * A circle.
             */
            export class Circle implements Shape {
              /** Radius. */
              readonly r: number;

              constructor(r: number) {
                this.r = r;
              }

              area(): number {
                return Math.PI * this.r ** 2;
              }
            }

            // The unit circle.
            export const unit = (): Circle => {
              return new Circle(1);
            };
            """,
        "src/lib/shapes/shape.ts": """
            export interface Shape {
              area(): number;
              name?: string;
            }

            export type Kind = "circle" | "square";
            """,
        "src/lib/shapes/index.ts": """
            export { Circle as Round, unit } from "./circle";
            export * from "./shape";
            """,
        "src/app/index.ts": """
            export default function main(): void {}
            """,
        "src/app/main.ts": """
            import { Round, Shape } from "@lib/shapes";
            import * as shapes from "../lib/shapes/index.js";
            import start from "@app";
            import type { Kind } from '@lib/shapes/shape';
            const fs = require("fs");
            const { join, resolve: res } = require("./paths");
            export { helper } from "./util";

            export function total(items: Shape[]): number {
              let sum = 0;
              for (const s of items) {
                sum += s.area() + shapes.unit().area();
              }
              return sum;
            }
            """,
        "src/app/paths.js": """
            exports.join = function join(a, b) {
              return a + "/" + b;
            };
            """,
        "src/app/util/index.tsx": """
            export const helper = () => <div />;
            """,
    })
    return tmp_path, DiskWorkspace([tmp_path], LANGUAGES)


def test_imports_cover_es_commonjs_and_reexports(project):
    root, workspace = project
    main = workspace.parsed(root / "src/app/main.ts")
    assert JS.imports(main.tree, main.source) == [
        Import("@lib/shapes", "Round", None, line=0),
        Import("@lib/shapes", "Shape", None, line=0),
        Import("../lib/shapes/index.js", None, "shapes", line=1),
        Import("@app", "default", "start", line=2),
        Import("@lib/shapes/shape", "Kind", None, line=3),
        Import("fs", None, "fs", line=4),
        Import("./paths", "join", None, line=5),
        Import("./paths", "resolve", "res", line=5),
        Import("./util", "helper", None, line=6),
    ]


def test_resolution_relative_tsconfig_paths_index_and_js_extension(project):
    root, workspace = project
    main = root / "src/app/main.ts"
    lib = root / "src/lib/shapes"

    def resolved(module: str) -> list[Path]:
        return JS.resolve(Import(module), main, workspace)

    assert resolved("@lib/shapes") == [lib / "index.ts"]  # paths "*" + index.* barrel
    assert resolved("@lib/shapes/shape") == [lib / "shape.ts"]
    assert resolved("@app") == [root / "src/app/index.ts"]  # exact paths entry
    assert resolved("../lib/shapes/index.js") == [lib / "index.ts"]  # ESM ".js" naming a .ts source
    assert resolved("./paths") == [root / "src/app/paths.js"]
    assert resolved("./util") == [root / "src/app/util/index.tsx"]
    assert resolved("src/lib/shapes/circle") == [lib / "circle.ts"]  # baseUrl
    assert resolved("fs") == []  # a package without node_modules: unresolved
    assert resolved("./missing") == []


def test_node_modules_package_entry(tmp_path):
    write(tmp_path, {
        "node_modules/left-pad/package.json": '{"name": "left-pad", "main": "lib/index.js"}',
        "node_modules/left-pad/lib/index.js": "module.exports = function leftPad() {};\n",
        "src/a.js": "const leftPad = require('left-pad');\n",
    })
    workspace = DiskWorkspace([tmp_path], LANGUAGES)
    found = JS.resolve(Import("left-pad"), tmp_path / "src/a.js", workspace)
    assert found == [tmp_path / "node_modules/left-pad/lib/index.js"]


def test_tsconfig_extends_and_lenient_json(tmp_path):
    write(tmp_path, {
        "tsconfig.base.json": '{"compilerOptions": {"baseUrl": "./", "paths": {"~/*": ["lib/*"],},},}',
        "pkg/tsconfig.json": '{\n  // inherits the paths\n  "extends": "../tsconfig.base",\n}',
        "lib/x.ts": "export const x = 1;\n",
        "pkg/a.ts": "import { x } from '~/x';\n",
    })
    workspace = DiskWorkspace([tmp_path], LANGUAGES)
    assert JS.resolve(Import("~/x", "x"), tmp_path / "pkg/a.ts", workspace) == [tmp_path / "lib/x.ts"]
    assert loads_lenient('{"a": "// not a comment", /* c */ "b": [1, 2,],}') == {"a": "// not a comment", "b": [1, 2]}
    assert loads_lenient("{ nope") is None


def test_class_skeleton_is_exact(project):
    root, workspace = project
    circle = workspace.parsed(root / "src/lib/shapes/circle.ts")
    found = JS.definition(circle, "Circle", workspace)
    assert found.skeleton == textwrap.dedent("""\
        /**
         * A circle.
         */
        export class Circle implements Shape {
          readonly r: number;
          constructor(r: number) { ... }
          area(): number { ... }
        }""")
    assert found.start_line == 5
    assert found.skeleton.splitlines()[3] == circle.text.splitlines()[found.start_line]
    assert JS.definition(circle, "unit", workspace).skeleton == (
        "// The unit circle.\nexport const unit = (): Circle => { ... };"
    )


def test_definitions_follow_reexports_through_a_barrel(project):
    root, workspace = project
    barrel = workspace.parsed(root / "src/lib/shapes/index.ts")
    round_ = JS.definition(barrel, "Round", workspace)
    assert round_.path == root / "src/lib/shapes/circle.ts"
    assert round_.skeleton.splitlines()[3] == "export class Circle implements Shape {"
    shape = JS.definition(barrel, "Shape", workspace)  # through `export * from`
    assert shape.path == root / "src/lib/shapes/shape.ts"
    assert shape.skeleton == "export interface Shape {\n  area(): number;\n  name?: string;\n}"
    assert JS.definition(barrel, "Kind", workspace).skeleton == 'export type Kind = "circle" | "square";'
    assert JS.definition(barrel, "Nope", workspace) is None
    main = workspace.parsed(root / "src/app/main.ts")
    assert JS.definition(main, "helper", workspace).path == root / "src/app/util/index.tsx"
    app = workspace.parsed(root / "src/app/index.ts")
    assert JS.definition(app, "default", workspace).skeleton == "export default function main(): void { ... }"
    paths = workspace.parsed(root / "src/app/paths.js")
    assert JS.definition(paths, "join", workspace).skeleton == "exports.join = function join(a, b) { ... };"


def test_member_and_outline(project):
    root, workspace = project
    circle = workspace.parsed(root / "src/lib/shapes/circle.ts")
    area = JS.member(circle, "Circle", "area")
    assert area.skeleton == "area(): number { ... }"
    assert area.start_line == 13
    assert JS.member(circle, "Circle", "r").skeleton == "/** Radius. */\nreadonly r: number;"
    assert JS.member(circle, "Circle", "missing") is None
    assert JS.outline(circle) == textwrap.dedent("""\
        export class Circle implements Shape {
          readonly r: number;
          constructor(r: number) { ... }
          area(): number { ... }
        }
        export const unit = (): Circle => { ... };""")


def test_object_namespace_member_and_long_values():
    parsed = parse(textwrap.dedent("""\
        export const api = {
          get(url) { return fetch(url); },
          post: (url, body) => { return fetch(url, body); },
        };
        export const table = [
          1,
          2,
          3,
          4,
          5,
          6,
          7,
        ];
        """), Path("/virtual/api.js"))
    assert JS.member(parsed, "api", "post").skeleton == "post: (url, body) => { ... }"
    assert JS.definition(parsed, "table", None).skeleton == "export const table = [ ... ];"


def test_scopes_with_headers(project):
    root, workspace = project
    circle = workspace.parsed(root / "src/lib/shapes/circle.ts")
    offset = circle.text.index("return Math.PI")
    scopes = JS.scopes(circle.tree, circle.source, offset)
    assert [(s.kind, s.name, s.header) for s in scopes] == [
        ("module", "", ""),
        ("class", "Circle", "export class Circle implements Shape {"),
        ("method", "area", "area(): number {"),
    ]
    offset = circle.text.index("return new Circle")
    assert [(s.kind, s.name, s.header) for s in JS.scopes(circle.tree, circle.source, offset)][1:] == [
        ("function", "unit", "export const unit = (): Circle => {"),
    ]


def test_scopes_while_typing_inside_error_nodes():
    text = "import x from 'y';\nexport class A extends B {\n  m(a: number) {\n    items.forEach((i) => {\n      const q = os."
    parsed = parse(text)
    assert parsed.tree.root_node.has_error
    scopes = JS.scopes(parsed.tree, parsed.source, len(parsed.source))
    assert [(s.kind, s.name, s.header) for s in scopes] == [
        ("module", "", ""),
        ("class", "A", "export class A extends B {"),
        ("method", "m", "m(a: number) {"),
        ("closure", "", "items.forEach((i) => {"),
    ]
    refs = JS.references(parsed.tree, parsed.source, 0, len(parsed.source), text.count("\n"))
    assert ("os",) in [r.parts for r in refs]
    assert ("q",) not in [r.parts for r in refs]


def test_references_nearest_first_without_locals_or_the_word_being_typed(project):
    root, workspace = project
    main = workspace.parsed(root / "src/app/main.ts")
    end = main.text.index("shapes.unit().area()") + len("shapes.unit().ar")
    refs = JS.references(main.tree, main.source, 0, end, main.text[:end].count("\n"))
    parts = [r.parts for r in refs]
    assert parts[0] == ("shapes", "unit")
    assert ("Shape",) in parts
    assert ("s",) not in parts and ("items",) not in parts and ("sum",) not in parts  # locals
    assert not any(p[-1] == "ar" for p in parts)  # being typed
    assert ("Round",) not in parts  # import statements are no references
    assert len(parts) == len(set(parts))
    distances = [r.distance for r in refs]
    assert distances == sorted(distances)


def test_jsx_and_typescript_react():
    parsed = parse(
        "import { Button } from './ui';\nexport function App() {\n  return <Button onClick={go}><div>x</div></Button>;\n}\n",
        Path("/virtual/app.tsx"),
    )
    assert parsed.language == "typescriptreact"
    refs = [r.parts for r in JS.references(parsed.tree, parsed.source, 0, len(parsed.source), 2)]
    assert ("Button",) in refs and ("go",) in refs and ("div",) not in refs
    scopes = JS.scopes(parsed.tree, parsed.source, parsed.text.index("return"))
    assert scopes[-1].header == "export function App() {"
    assert JS.definition(parsed, "App", None).skeleton == "export function App() { ... }"


def test_namespace_and_declare():
    parsed = parse(textwrap.dedent("""\
        /** Geometry helpers. */
        export namespace Geo {
          export function dist(a: number, b: number): number {
            return a - b;
          }
        }
        declare function ext(x: string): void;
        """))
    assert JS.definition(parsed, "dist", None).skeleton == "export function dist(a: number, b: number): number { ... }"
    assert JS.member(parsed, "Geo", "dist").skeleton == "export function dist(a: number, b: number): number { ... }"
    assert JS.definition(parsed, "ext", None).skeleton == "declare function ext(x: string): void;"
    scopes = JS.scopes(parsed.tree, parsed.source, parsed.text.index("return"))
    assert [(s.kind, s.name) for s in scopes] == [("module", ""), ("namespace", "Geo"), ("function", "dist")]


def test_outline_keeps_declarations_only():
    parsed = parse(textwrap.dedent("""\
        import x from "./x";
        const app = makeApp();
        if (require.main === module) {
          app.listen(3000);
        }
        function handler(req) {
          return x(req);
        }
        export default class extends Base {}
        """), Path("/virtual/server.js"))
    assert JS.outline(parsed) == (
        "const app = makeApp();\nfunction handler(req) { ... }\nexport default class extends Base {}"
    )
