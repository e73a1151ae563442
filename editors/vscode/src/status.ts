// The status-bar item's text, tooltip and accessible label, from the server's
// `codeLlama/status` notification and the completion gate.

import { CompletionGate } from "./gate";

/** `codeLlama/status` params (the server sends more fields; these are the ones shown). */
export interface ServerStatus {
  state: "starting" | "loading" | "ready" | "error" | "stopped";
  model?: string;
  message?: string;
  lastLatencyMs?: number | null;
}

export interface StatusView {
  text: string;
  tooltip: string;
  /** Read by screen readers, and by the end-to-end test to wait for "ready". */
  ariaLabel: string;
  error: boolean;
}

const ICONS: Record<ServerStatus["state"], string> = {
  starting: "$(loading~spin)",
  loading: "$(loading~spin)",
  ready: "$(sparkle)",
  error: "$(error)",
  stopped: "$(debug-disconnect)",
};

/** Accepts a notification's params; anything malformed is an error state saying so. */
export function parseStatus(params: unknown): ServerStatus {
  const data = (params ?? {}) as Record<string, unknown>;
  const state = data.state;
  if (state !== "loading" && state !== "ready" && state !== "error") {
    return { state: "error", message: `unexpected codeLlama/status: ${JSON.stringify(params)}` };
  }
  return {
    state,
    model: typeof data.model === "string" ? data.model : undefined,
    message: typeof data.message === "string" ? data.message : undefined,
    lastLatencyMs: typeof data.lastLatencyMs === "number" ? data.lastLatencyMs : null,
  };
}

export function statusView(status: ServerStatus, gate: CompletionGate, nowMs: number): StatusView {
  const snoozedUntil = gate.snoozedUntil(nowMs);
  let icon = ICONS[status.state];
  let detail = "";
  let gateLabel = "";
  if (status.state === "ready" && status.lastLatencyMs != null) {
    detail = ` ${Math.round(status.lastLatencyMs)} ms`;
  }
  if (!gate.enabled) {
    icon = status.state === "error" ? icon : "$(circle-slash)";
    gateLabel = "inline completions off";
  } else if (snoozedUntil !== undefined) {
    const minutes = Math.ceil((snoozedUntil - nowMs) / 60_000);
    icon = status.state === "error" ? icon : "$(clock)";
    detail = ` ${minutes} min`;
    gateLabel = `inline completions snoozed for ${minutes} min`;
  }
  const stateLabel = status.state === "ready" && status.lastLatencyMs != null
    ? `ready, last completion ${Math.round(status.lastLatencyMs)} ms`
    : status.state;
  const message = status.message ? `: ${status.message}` : "";
  const ariaLabel = `Code Llama: ${stateLabel}${status.state === "error" ? message : ""}${gateLabel ? `; ${gateLabel}` : ""}`;
  const lines = [`Code Llama: ${stateLabel}${message}`];
  if (status.model) {
    lines.push(`Model: ${status.model}`);
  }
  if (gateLabel) {
    lines.push(gateLabel[0].toUpperCase() + gateLabel.slice(1));
  }
  lines.push("Click for options");
  return { text: `${icon} Code Llama${detail}`, tooltip: lines.join("\n"), ariaLabel, error: status.state === "error" };
}
