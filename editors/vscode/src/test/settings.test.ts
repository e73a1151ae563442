import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { FORWARDED_KEYS, serverCommand, serverSettings } from "../settings";

const reader = (values: Record<string, unknown>) => (key: string) => values[key];

test("every forwarded setting is sent under the server's camelCase key", () => {
  const values: Record<string, unknown> = {
    model: "/models/tiny", instructModel: "codellama/CodeLlama-7b-Instruct-hf", backend: "transformers",
    url: "http://127.0.0.1:8080", device: "cuda:1", maxContextTokens: 2048, maxNewTokens: 32, fimMode: "spm",
    enabledLanguages: ["python", "rust"], ignorePatterns: ["secrets/**"],
  };
  assert.deepEqual(serverSettings(reader(values)), values);
  assert.deepEqual(Object.keys(values).sort(), [...FORWARDED_KEYS].sort());
});

test("unset nullable settings are sent as null so that clearing one resets the server", () => {
  const sent = serverSettings(reader({ model: "m", instructModel: "", url: undefined, maxContextTokens: null }));
  assert.equal(sent.instructModel, null);
  assert.equal(sent.url, null);
  assert.equal(sent.maxContextTokens, null);
  assert.equal(sent.model, "m");
  assert.ok(!("device" in sent), "a setting VS Code does not know is left to the server's default");
});

test("serverSettings adds other server keys; the contributed settings win", () => {
  const sent = serverSettings(reader({
    serverSettings: { debounceMs: 50, localFilesOnly: true, maxNewTokens: 999 }, maxNewTokens: 16,
  }));
  assert.equal(sent.debounceMs, 50);
  assert.equal(sent.localFilesOnly, true);
  assert.equal(sent.maxNewTokens, 16);
  assert.deepEqual(serverSettings(reader({ serverSettings: ["not", "an", "object"] })),
    { instructModel: null, url: null, maxContextTokens: null });
});

test("the server starts from PATH by default, or from a configured command or interpreter", () => {
  assert.deepEqual(serverCommand(reader({})), { command: "code-llama-ls", args: ["--stdio"] });
  assert.deepEqual(serverCommand(reader({ "server.command": " /opt/bin/code-llama-ls " })),
    { command: "/opt/bin/code-llama-ls", args: ["--stdio"] });
  assert.deepEqual(serverCommand(reader({ "server.command": "x", "server.pythonPath": "/venv/bin/python" })),
    { command: "/venv/bin/python", args: ["-m", "code_llama_ls", "--stdio"] });
});

test("package.json contributes exactly the forwarded server keys, besides the extension's own", () => {
  const manifest = JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8"));
  const keys = Object.keys(manifest.contributes.configuration.properties).map((key) => key.replace(/^codeLlama\./, ""));
  assert.deepEqual(keys.filter((key) => !key.includes(".") && key !== "serverSettings").sort(), [...FORWARDED_KEYS].sort());
});
