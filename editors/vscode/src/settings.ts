// What the extension sends the server: the `codeLlama.*` settings mapped to the server's
// camelCase keys (code_llama_ls/settings.py), and the command line that starts it.

/** Reads one `codeLlama.*` setting by its key under `codeLlama` (e.g. "maxNewTokens"). */
export type SettingReader = (key: string) => unknown;

/** Settings contributed one by one; each is the server key of the same name. */
export const FORWARDED_KEYS = [
  "model",
  "instructModel",
  "backend",
  "url",
  "device",
  "maxContextTokens",
  "maxNewTokens",
  "fimMode",
  "enabledLanguages",
  "ignorePatterns",
] as const;

/** Settings whose "unset" is null on the server (an empty string in the settings UI means unset). */
const NULLABLE = new Set<string>(["instructModel", "url", "maxContextTokens"]);

/**
 * The object sent as `initializationOptions` and as `settings.codeLlama` in
 * `workspace/didChangeConfiguration`. Every forwarded key is always present, so that clearing a
 * setting resets it on the server (null for the nullable ones). `serverSettings` adds the other
 * server keys; the keys contributed one by one win over the same key there.
 */
export function serverSettings(read: SettingReader): Record<string, unknown> {
  const extra = read("serverSettings");
  const result: Record<string, unknown> =
    extra !== null && typeof extra === "object" && !Array.isArray(extra) ? { ...(extra as object) } : {};
  for (const key of FORWARDED_KEYS) {
    let value = read(key);
    if (NULLABLE.has(key) && (value === undefined || value === "")) {
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
export function serverCommand(read: SettingReader): ServerCommand {
  const python = stringSetting(read("server.pythonPath"));
  if (python) {
    return { command: python, args: ["-m", "code_llama_ls", "--stdio"] };
  }
  return { command: stringSetting(read("server.command")) || "code-llama-ls", args: ["--stdio"] };
}

function stringSetting(value: unknown): string {
  return typeof value === "string" ? value.trim() : "";
}
