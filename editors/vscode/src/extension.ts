// VS Code wiring: starts code-llama-ls, forwards settings, gates inline completions, shows
// status, explanations and the server's log. The logic worth testing lives in the pure modules.

import * as vscode from "vscode";
import { DidChangeConfigurationNotification, LanguageClient, State } from "vscode-languageclient/node";
import { uniqueCandidates } from "./candidates";
import { PartialFilter } from "./explanation";
import { CompletionGate } from "./gate";
import { ExplanationPanel, WRITING } from "./panel";
import { ServerCommand, serverCommand, serverKeys, serverSettings, SettingsSource } from "./settings";
import { parseStatus, ServerStatus, statusView } from "./status";

const SECTION = "codeLlama";
const EXPLAIN_REQUEST = "codeLlama/explain";
const SNOOZE_MINUTES = [5, 15, 60];
/** Server commands (run from code actions or our palette commands) and what is missing when none applies. */
const ACTIONS: Record<string, string> = {
  "codeLlama.explain": "select code or put the cursor in a function or class to explain",
  "codeLlama.ask": "select code or put the cursor in a function or class to ask about",
  "codeLlama.generateDocstring": "put the cursor on a function, method or class",
  "codeLlama.generateTests": "put the cursor on a function or class, in a language with tests support",
};

let client: LanguageClient | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel("Code Llama", { log: true });
  const read = (key: string): unknown => vscode.workspace.getConfiguration(SECTION).get(key);
  const source: SettingsSource = {
    value: read,
    isSet: (key) => {
      const seen = vscode.workspace.getConfiguration(SECTION).inspect(key);
      return [seen?.globalValue, seen?.workspaceValue, seen?.workspaceFolderValue].some((v) => v !== undefined);
    },
  };
  // Every server setting this package.json contributes (scripts/sync_settings.py writes them).
  const keys = serverKeys(context.extension.packageJSON.contributes.configuration.properties);
  const toServer = (): Record<string, unknown> => serverSettings(source, keys);
  let clientCommand: ServerCommand | undefined; // how the client created last starts its server
  let sentSettings = ""; // the settings the server got last, as JSON
  const gate = new CompletionGate(read("inlineCompletions.enabled") !== false);
  const panel = new ExplanationPanel();
  const partials = new PartialFilter();
  const item = vscode.window.createStatusBarItem("codeLlama.status", vscode.StatusBarAlignment.Right, 100);
  item.name = "Code Llama";
  item.command = "codeLlama.statusMenu";
  let status: ServerStatus = { state: "starting" };
  let snoozeTicker: NodeJS.Timeout | undefined;

  const refresh = (): void => {
    const view = statusView(status, gate, Date.now());
    item.text = view.text;
    item.tooltip = view.tooltip;
    item.accessibilityInformation = { label: view.ariaLabel };
    item.backgroundColor = view.error ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
    item.show();
    if (snoozeTicker !== undefined && gate.snoozedUntil(Date.now()) === undefined) {
      clearInterval(snoozeTicker);
      snoozeTicker = undefined;
    }
  };

  async function explain(command: string, args: unknown[]): Promise<unknown> {
    const [uri, range] = args;
    let question = command === "codeLlama.ask" ? args[2] : undefined;
    if (command === "codeLlama.ask" && typeof question !== "string") {
      question = await vscode.window.showInputBox({
        title: "Ask Code Llama", prompt: "Your question about the code", ignoreFocusOut: true,
      });
      if (typeof question !== "string" || !question.trim()) {
        return undefined;
      }
    }
    const running = client;
    if (running === undefined) {
      return undefined;
    }
    const token = panel.begin(typeof question === "string" ? `Code Llama: ${question}` : "Code Llama: Explanation");
    const generation = partials.start();
    try {
      const result = await running.sendRequest<{ markdown: string }>(EXPLAIN_REQUEST,
        { textDocument: { uri }, range, question }, token);
      panel.update(result.markdown, "");
      return result;
    } catch (error) {
      if (!token.isCancellationRequested) {
        panel.update("", `Code Llama could not answer: ${error instanceof Error ? error.message : String(error)}`);
      }
      return undefined;
    } finally {
      partials.stop(generation);
    }
  }

  function createClient(): LanguageClient {
    const command = serverCommand(read);
    clientCommand = command;
    const created = new LanguageClient("codeLlama", "Code Llama", command, {
      documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
      outputChannel: output,
      initializationOptions: () => {
        const settings = toServer();
        sentSettings = JSON.stringify(settings);
        return settings;
      },
      middleware: {
        provideInlineCompletionItems: async (document, position, ctx, token, next) => {
          if (!gate.allows(ctx.triggerKind === vscode.InlineCompletionTriggerKind.Invoke, Date.now())) {
            return null;
          }
          const result = await next(document, position, ctx, token);
          if (!result) {
            return result;
          }
          return Array.isArray(result) ? uniqueCandidates(result)
            : new vscode.InlineCompletionList(uniqueCandidates(result.items));
        },
        executeCommand: async (command, args, next) => {
          if (command === "codeLlama.explain" || command === "codeLlama.ask") {
            return explain(command, args);
          }
          const result = await next(command, args);
          if (result?.applied && typeof result.message === "string") {
            vscode.window.setStatusBarMessage(`$(check) Code Llama: ${result.message}`, 5000);
          }
          return result;
        },
      },
    });
    created.onNotification("codeLlama/status", (params: unknown) => {
      status = parseStatus(params);
      refresh();
    });
    created.onNotification("codeLlama/partialResult", (params: { token?: unknown; delta?: unknown; done?: unknown }) => {
      const answer = partials.take(params);
      if (answer !== undefined) {
        panel.update(answer, WRITING);
      }
    });
    created.onDidChangeState((event) => {
      if (event.newState === State.Stopped && status.state !== "error") {
        status = { state: "stopped", message: "the server stopped; see the log" };
        refresh();
      }
    });
    return created;
  }

  async function start(): Promise<void> {
    status = { state: "starting" };
    refresh();
    client = createClient();
    try {
      await client.start();
    } catch (error) {
      const { command } = serverCommand(read);
      const message = `the server did not start (${command}): ${error instanceof Error ? error.message : String(error)}`;
      status = { state: "error", message };
      refresh();
      output.error(message);
      const choice = await vscode.window.showErrorMessage(`Code Llama: ${message}`, "Open Settings", "Show Log");
      if (choice === "Open Settings") {
        void vscode.commands.executeCommand("workbench.action.openSettings", "codeLlama.server");
      } else if (choice === "Show Log") {
        output.show(true);
      }
    }
  }

  async function restart(): Promise<void> {
    const old = client;
    client = undefined;
    await old?.dispose().catch((error) => output.warn(`stopping the server: ${error}`));
    await start();
  }

  /** Runs a server action where the server offers it (its code actions decide the range). */
  async function runAction(command: string): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (editor === undefined || client === undefined || !client.isRunning()) {
      void vscode.window.showWarningMessage("Code Llama: open a file and wait for the server to start.");
      return;
    }
    const actions = await vscode.commands.executeCommand<(vscode.CodeAction | vscode.Command)[]>(
      "vscode.executeCodeActionProvider", editor.document.uri, editor.selection, "refactor.codeLlama");
    const action = (actions ?? []).map((a) => ("title" in a && "command" in a && typeof a.command === "string"
      ? a as vscode.Command : (a as vscode.CodeAction).command)).find((c) => c?.command === command);
    if (action === undefined) {
      void vscode.window.showWarningMessage(`Code Llama: ${ACTIONS[command]}.`);
      return;
    }
    await vscode.commands.executeCommand(action.command, ...(action.arguments ?? []));
  }

  async function snoozeMenu(): Promise<void> {
    const until = gate.snoozedUntil(Date.now());
    const picks = [...(until !== undefined ? [{ label: "Resume now", minutes: 0 }] : []),
      ...SNOOZE_MINUTES.map((minutes) => ({ label: `Snooze for ${minutes} minutes`, minutes }))];
    const pick = await vscode.window.showQuickPick(picks, { title: "Code Llama: snooze inline completions" });
    if (pick === undefined) {
      return;
    }
    if (pick.minutes === 0) {
      gate.resume();
    } else {
      gate.snooze(pick.minutes, Date.now());
      snoozeTicker ??= setInterval(refresh, 30_000);
    }
    refresh();
  }

  async function statusMenu(): Promise<void> {
    const picks = [
      { label: gate.enabled ? "Turn inline completions off" : "Turn inline completions on", command: "codeLlama.toggleCompletions" },
      { label: "Snooze inline completions…", command: "codeLlama.snoozeCompletions" },
      { label: "Suggest a completion here", command: "codeLlama.triggerCompletion" },
      { label: "Show server log", command: "codeLlama.showLog" },
      { label: "Restart server", command: "codeLlama.restartServer" },
    ];
    const pick = await vscode.window.showQuickPick(picks, { title: statusView(status, gate, Date.now()).ariaLabel });
    if (pick !== undefined) {
      await vscode.commands.executeCommand(pick.command);
    }
  }

  const register = (id: string, run: () => unknown) => vscode.commands.registerCommand(id, run);
  context.subscriptions.push(output, item, { dispose: () => panel.dispose() },
    { dispose: () => snoozeTicker !== undefined && clearInterval(snoozeTicker) },
    register("codeLlama.explainCode", () => runAction("codeLlama.explain")),
    register("codeLlama.askAboutCode", () => runAction("codeLlama.ask")),
    register("codeLlama.generateDocstringHere", () => runAction("codeLlama.generateDocstring")),
    register("codeLlama.generateTestsHere", () => runAction("codeLlama.generateTests")),
    register("codeLlama.triggerCompletion", () => vscode.commands.executeCommand("editor.action.inlineSuggest.trigger")),
    register("codeLlama.nextCompletion", () => vscode.commands.executeCommand("editor.action.inlineSuggest.showNext")),
    register("codeLlama.previousCompletion", () => vscode.commands.executeCommand("editor.action.inlineSuggest.showPrevious")),
    register("codeLlama.toggleCompletions", async () => {
      gate.resume();
      await vscode.workspace.getConfiguration(SECTION).update("inlineCompletions.enabled", !gate.enabled,
        vscode.ConfigurationTarget.Global);
    }),
    register("codeLlama.snoozeCompletions", snoozeMenu),
    register("codeLlama.statusMenu", statusMenu),
    register("codeLlama.showLog", () => output.show(true)),
    register("codeLlama.restartServer", restart),
    // A `"codeLlama": {...}` object in settings.json changes the key "codeLlama" only, so that
    // affectsConfiguration("codeLlama.url") is false for it: compare what the server gets instead.
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (!event.affectsConfiguration(SECTION)) {
        return;
      }
      if (JSON.stringify(serverCommand(read)) !== JSON.stringify(clientCommand)) {
        void restart();
        return;
      }
      const enabled = read("inlineCompletions.enabled") !== false;
      if (enabled !== gate.enabled) {
        gate.enabled = enabled;
        refresh();
      }
      const settings = toServer();
      if (JSON.stringify(settings) !== sentSettings && client?.isRunning()) {
        sentSettings = JSON.stringify(settings);
        void client.sendNotification(DidChangeConfigurationNotification.type, { settings: { [SECTION]: settings } });
      }
    }));
  void start();
}

export function deactivate(): Promise<void> | undefined {
  return client?.stop();
}
