import assert from "node:assert/strict";
import { test } from "node:test";
import { panelPage, PartialFilter, renderMarkdown } from "../explanation";

test("Markdown is rendered and raw HTML from the model is escaped", () => {
  const html = renderMarkdown("It returns the sum of `a` and `b`.\n\n```python\nx = 1\n```\n<script>alert(1)</script>");
  assert.match(html, /<p>It returns the sum of <code>a<\/code> and <code>b<\/code>\.<\/p>/);
  assert.match(html, /<pre><code class="language-python">x = 1\n<\/code><\/pre>/);
  assert.doesNotMatch(html, /<script>/);
  assert.match(html, /&lt;script&gt;/);
});

test("the page allows only its own nonce's script and escapes the title", () => {
  const page = panelPage("Code Llama: <why>", "done", "<p>x</p>", "N0NCE", "vscode-webview:");
  assert.match(page, /script-src 'nonce-N0NCE'/);
  assert.match(page, /<script nonce="N0NCE">/);
  assert.match(page, /<h3>Code Llama: &#60;why&#62;<\/h3>/);
  assert.match(page, /<div id="content"><p>x<\/p><\/div>/);
});

test("partials are taken from the first explain/ask token of a request only", () => {
  const filter = new PartialFilter();
  assert.equal(filter.accepts("code-llama-explain-1"), false, "nothing is running");
  const first = filter.start();
  assert.equal(filter.accepts("code-llama-docstring-9"), false);
  assert.equal(filter.accepts("code-llama-explain-1"), true);
  assert.equal(filter.accepts("code-llama-ask-2"), false);
  assert.equal(filter.accepts("code-llama-explain-1"), true);
  filter.stop(first);
  assert.equal(filter.accepts("code-llama-explain-1"), false);
  filter.start();
  assert.equal(filter.accepts("code-llama-ask-2"), true);
});

test("a replaced request ending late does not stop the partials of the one that replaced it", () => {
  const filter = new PartialFilter();
  const replaced = filter.start();
  const current = filter.start();
  filter.stop(replaced);
  assert.equal(filter.accepts("code-llama-explain-3"), true);
  filter.stop(current);
  assert.equal(filter.accepts("code-llama-explain-3"), false);
});

test("deltas of the request's own token are appended; others are ignored", () => {
  const filter = new PartialFilter();
  assert.equal(filter.take({ token: "code-llama-explain-1", delta: "It" }), undefined, "nothing is running");
  filter.start();
  assert.equal(filter.take({ token: "code-llama-explain-1", delta: "It" }), "It");
  assert.equal(filter.take({ token: "code-llama-ask-2", delta: "other" }), undefined);
  assert.equal(filter.take({ token: "code-llama-explain-1", delta: " returns 1.", done: true }), "It returns 1.");
  assert.equal(filter.take({ token: "code-llama-explain-1" }), undefined, "no delta");
  filter.start();
  assert.equal(filter.take({ token: "code-llama-ask-2", delta: "New" }), "New", "a new request starts empty");
});
