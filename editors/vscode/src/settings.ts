// What the extension sends the server: every server setting, contributed one by one as
// `codeLlama.<key>` in package.json (generated from code_llama_ls/settings.py by
// scripts/sync_settings.py), plus `codeLlama.serverSettings`; and the command line that starts it.

/** The `codeLlama.*` settings as VS Code holds them, by their key under `codeLlama` (e.g. "maxNewTokens"). */
export interface SettingsSource {
  /** The effective value: the user's, else the contributed default. */
  value(key: string): unknown;
  /** Whether the user set it anywhere (user, workspace or folder settings). */
  isSet(key: string): boolean;
}

/** One `codeLlama.*` entry of package.json's `contributes.configuration.properties`. */
export interface ContributedSetting {
  type?: string | string[];
}

export interface ServerKey {
  key: string;
  /** Unset is null on the server (an empty string in the settings editor means unset too). */
  nullable: boolean;
}

const SECTION = "codeLlama";
const EXTRA = "serverSettings";

/**
 * The server settings among the contributed ones: every `codeLlama.<key>` without a further dot.
 * The extension's own settings have one (`server.command`, `inlineCompletions.enabled`), and
 * `serverSettings` is the object of further keys.
 */
export function serverKeys(properties: Record<string, ContributedSetting>): ServerKey[] {
  return Object.entries(properties)
    .map(([name, setting]) => ({ key: name.slice(SECTION.length + 1), setting }))
    .filter(({ key }) => !key.includes(".") && key !== EXTRA)
    .map(({ key, setting }) => ({ key, nullable: Array.isArray(setting.type) && setting.type.includes("null") }));
}

/**
 * `codeLlama.serverSettings` as a flat object. A `{"codeLlama": {...}}` block pasted into it (as
 * the deployment guide shows settings) is read as its contents.
 */
function extraSettings(value: unknown): Record<string, unknown> {
  if (!isObject(value)) {
    return {};
  }
  const { [SECTION]: nested, ...rest } = value;
  return isObject(nested) ? { ...rest, ...nested } : rest;
}

/**
 * The object sent as `initializationOptions` and as `settings.codeLlama` in
 * `workspace/didChangeConfiguration`. Every server key is always present, so that clearing a
 * setting resets it on the server (the server merges what it is sent onto what it has). For each
 * key: the user's `codeLlama.<key>` if set, else the same key in `serverSettings`, else the
 * contributed default (the server's). Keys of `serverSettings` the extension does not know pass
 * through, so that the server warns about them.
 */
export function serverSettings(source: SettingsSource, keys: readonly ServerKey[]): Record<string, unknown> {
  const extra = extraSettings(source.value(EXTRA));
  const result: Record<string, unknown> = { ...extra };
  for (const { key, nullable } of keys) {
    let value = source.isSet(key) || !(key in extra) ? source.value(key) : extra[key];
    if (nullable && (value === undefined || value === "")) {
      value = null;
    }
    if (value !== undefined) {
      result[key] = value;
    }
  }
  return result;
}

export interface ServerCommand {
  command: string;
  args: string[];
}

/** `<pythonPath> -m code_llama_ls --stdio` when an interpreter is set, else `<command> --stdio`. */
export function serverCommand(read: (key: string) => unknown): ServerCommand {
  const python = stringSetting(read("server.pythonPath"));
  if (python) {
    return { command: python, args: ["-m", "code_llama_ls", "--stdio"] };
  }
  return { command: stringSetting(read("server.command")) || "code-llama-ls", args: ["--stdio"] };
}

function stringSetting(value: unknown): string {
  return typeof value === "string" ? value.trim() : "";
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
