import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { serverCommand, serverKeys, serverSettings, SettingsSource } from "../settings";

type Property = { type?: string | string[]; default?: unknown };
const manifest = JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8"));
const properties: Record<string, Property> = manifest.contributes.configuration.properties;
const keys = serverKeys(properties);

/** What VS Code's configuration gives: the user's value where set, else package.json's default. */
const vscodeLike = (user: Record<string, unknown>): SettingsSource => ({
  value: (key) => (key in user ? user[key] : properties[`codeLlama.${key}`]?.default),
  isSet: (key) => key in user,
});
const reader = (values: Record<string, unknown>) => (key: string) => values[key];

test("the server keys are the contributed settings without a further dot, besides serverSettings", () => {
  const names = keys.map(({ key }) => key);
  assert.ok(names.includes("apiKeyEnv") && names.includes("caCertPath") && names.includes("tokenizer"), names.join());
  assert.ok(!names.some((key) => key.startsWith("server") || key.startsWith("inlineCompletions")), names.join());
  assert.deepEqual(keys.find(({ key }) => key === "url"), { key: "url", nullable: true });
  assert.deepEqual(keys.find(({ key }) => key === "maxNewTokens"), { key: "maxNewTokens", nullable: false });
});

test("with nothing set, every server key is sent with its contributed default", () => {
  const sent = serverSettings(vscodeLike({}), keys);
  assert.deepEqual(Object.keys(sent), keys.map(({ key }) => key));
  for (const { key } of keys) {
    assert.deepEqual(sent[key], properties[`codeLlama.${key}`].default, key);
  }
});

test("a setting the user set is sent; an empty string clears a nullable one", () => {
  const sent = serverSettings(vscodeLike({ apiKeyEnv: "TEAM_KEY", caCertPath: "/etc/ca.pem", url: "", maxNewTokens: 16 }), keys);
  assert.equal(sent.apiKeyEnv, "TEAM_KEY");
  assert.equal(sent.caCertPath, "/etc/ca.pem");
  assert.equal(sent.url, null);
  assert.equal(sent.maxNewTokens, 16);
});

test("serverSettings fills keys the user did not set; a set codeLlama.<key> wins; unknown keys pass through", () => {
  const sent = serverSettings(vscodeLike({
    maxNewTokens: 16,
    serverSettings: { debounceMs: 50, maxNewTokens: 999, notASetting: 1 },
  }), keys);
  assert.equal(sent.debounceMs, 50);
  assert.equal(sent.maxNewTokens, 16);
  assert.equal(sent.notASetting, 1, "the server warns about it");
});

test("a {\"codeLlama\": {...}} block pasted into serverSettings is read as its contents", () => {
  const sent = serverSettings(vscodeLike({
    serverSettings: { codeLlama: { backend: "openai", requestTimeoutS: 5 }, debounceMs: 50 },
  }), keys);
  assert.equal(sent.backend, "openai");
  assert.equal(sent.requestTimeoutS, 5);
  assert.equal(sent.debounceMs, 50);
  assert.ok(!("codeLlama" in sent));
});

test("serverSettings that is not an object is ignored", () => {
  assert.deepEqual(serverSettings(vscodeLike({ serverSettings: ["not", "an", "object"] }), keys),
    serverSettings(vscodeLike({}), keys));
});

test("the server starts from PATH by default, or from a configured command or interpreter", () => {
  assert.deepEqual(serverCommand(reader({})), { command: "code-llama-ls", args: ["--stdio"] });
  assert.deepEqual(serverCommand(reader({ "server.command": " /opt/bin/code-llama-ls " })),
    { command: "/opt/bin/code-llama-ls", args: ["--stdio"] });
  assert.deepEqual(serverCommand(reader({ "server.command": "x", "server.pythonPath": "/venv/bin/python" })),
    { command: "/venv/bin/python", args: ["-m", "code_llama_ls", "--stdio"] });
});
