import assert from "node:assert/strict";
import { test } from "node:test";
import { CompletionGate } from "../gate";
import { parseStatus, statusView } from "../status";

const NOW = 1_000_000;

test("loading, ready with the last latency, and error are shown", () => {
  const gate = new CompletionGate(true);
  const loading = statusView(parseStatus({ state: "loading", model: "m", message: "", lastLatencyMs: null }), gate, NOW);
  assert.equal(loading.text, "$(loading~spin) Code Llama");
  assert.equal(loading.ariaLabel, "Code Llama: loading");
  const ready = statusView(parseStatus({ state: "ready", model: "m", lastLatencyMs: 123.4 }), gate, NOW);
  assert.equal(ready.text, "$(sparkle) Code Llama 123 ms");
  assert.equal(ready.ariaLabel, "Code Llama: ready, last completion 123 ms");
  assert.match(ready.tooltip, /Model: m/);
  const error = statusView(parseStatus({ state: "error", message: "no such model" }), gate, NOW);
  assert.equal(error.error, true);
  assert.equal(error.ariaLabel, "Code Llama: error: no such model");
});

test("a malformed notification becomes an error that shows it", () => {
  const status = parseStatus({ state: "sleeping" });
  assert.equal(status.state, "error");
  assert.match(status.message ?? "", /sleeping/);
});

test("off and snoozed are shown, and a snooze ends on time", () => {
  const ready = parseStatus({ state: "ready", lastLatencyMs: 80 });
  const gate = new CompletionGate(false);
  assert.equal(statusView(ready, gate, NOW).text, "$(circle-slash) Code Llama 80 ms");
  assert.match(statusView(ready, gate, NOW).ariaLabel, /; inline completions off$/);
  gate.enabled = true;
  gate.snooze(15, NOW);
  assert.equal(statusView(ready, gate, NOW + 60_000).text, "$(clock) Code Llama 14 min");
  assert.equal(statusView(ready, gate, NOW + 15 * 60_000).text, "$(sparkle) Code Llama 80 ms");
});

test("the gate holds back typing requests when off or snoozed, never a request made by hand", () => {
  const gate = new CompletionGate(true);
  assert.equal(gate.allows(false, NOW), true);
  gate.snooze(5, NOW);
  assert.equal(gate.allows(false, NOW + 1), false);
  assert.equal(gate.allows(true, NOW + 1), true);
  assert.equal(gate.allows(false, NOW + 5 * 60_000), true);
  gate.snooze(5, NOW);
  gate.resume();
  assert.equal(gate.allows(false, NOW), true);
  gate.enabled = false;
  assert.equal(gate.allows(false, NOW), false);
  assert.equal(gate.allows(true, NOW), true);
});
