// One webview panel, reused, that shows explanations as rendered Markdown while they stream in.

import { randomBytes } from "node:crypto";
import * as vscode from "vscode";
import { panelPage, renderMarkdown } from "./explanation";

export const WRITING = "Code Llama is writing…";

export class ExplanationPanel {
  private panel: vscode.WebviewPanel | undefined;
  private cancel: vscode.CancellationTokenSource | undefined;

  /**
   * Opens (or reuses) the panel with a new, empty page for an answer; closing the panel cancels
   * the request. Everything after this is a message to that page, so updates arrive in order.
   */
  begin(title: string): vscode.CancellationToken {
    this.cancel?.cancel();
    this.cancel = new vscode.CancellationTokenSource();
    if (this.panel === undefined) {
      this.panel = vscode.window.createWebviewPanel("codeLlama.explanation", title,
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
        { enableScripts: true, retainContextWhenHidden: true });
      this.panel.onDidDispose(() => {
        this.panel = undefined;
        this.cancel?.cancel();
      });
    } else {
      this.panel.title = title;
      this.panel.reveal(vscode.ViewColumn.Beside, true);
    }
    const nonce = randomBytes(16).toString("base64");
    this.panel.webview.html = panelPage(title, WRITING, "", nonce, this.panel.webview.cspSource);
    return this.cancel.token;
  }

  /** The answer so far (status WRITING), the final answer (status ""), or an error (as status). */
  update(markdown: string, status: string): void {
    void this.panel?.webview.postMessage({ html: renderMarkdown(markdown), status });
  }

  dispose(): void {
    this.cancel?.cancel();
    this.panel?.dispose();
  }
}
