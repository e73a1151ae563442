import assert from "node:assert/strict";
import { test } from "node:test";
import { uniqueCandidates } from "../candidates";

const at = (line: number, a: number, b: number) => ({ start: { line, character: a }, end: { line, character: b } });

test("repeated and empty candidates are dropped; the order to cycle through is the server's", () => {
  const items = [
    { insertText: "return a + b", range: at(1, 4, 4) },
    { insertText: "" },
    { insertText: "return a - b", range: at(1, 4, 4) },
    { insertText: { value: "return a + b" }, range: at(1, 4, 4) },
    { insertText: "return a + b", range: at(1, 4, 5) },
  ];
  assert.deepEqual(uniqueCandidates(items).map((item) => item.insertText), [
    "return a + b", "return a - b", "return a + b"]);
  assert.deepEqual(uniqueCandidates(items)[2].range, at(1, 4, 5), "the same text over another range is kept");
});

test("multi-line candidates are compared whole", () => {
  const items = [{ insertText: "for x in xs:\n    y += x" }, { insertText: "for x in xs:\n    y -= x" }];
  assert.equal(uniqueCandidates(items).length, 2);
});
