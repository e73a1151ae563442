// One webview panel, reused, that shows explanations as rendered Markdown while they stream in.

import { randomBytes } from "node:crypto";
import * as vscode from "vscode";
import { panelPage, renderMarkdown } from "./explanation";

export class ExplanationPanel {
  private panel: vscode.WebviewPanel | undefined;
  private cancel: vscode.CancellationTokenSource | undefined;
  private title = "";

  /** Opens (or reuses) the panel for a new answer; closing the panel cancels the request. */
  begin(title: string): vscode.CancellationToken {
    this.cancel?.cancel();
    this.cancel = new vscode.CancellationTokenSource();
    if (this.panel === undefined) {
      this.panel = vscode.window.createWebviewPanel("codeLlama.explanation", title,
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, { enableScripts: true });
      this.panel.onDidDispose(() => {
        this.panel = undefined;
        this.cancel?.cancel();
      });
    } else {
      this.panel.title = title;
      this.panel.reveal(vscode.ViewColumn.Beside, true);
    }
    this.title = title;
    this.show("", "Code Llama is writing…");
    return this.cancel.token;
  }

  /** A streamed partial answer: posted to the page, which swaps it in without reloading. */
  update(markdown: string): void {
    void this.panel?.webview.postMessage({ html: renderMarkdown(markdown), status: "Code Llama is writing…" });
  }

  /** The final answer (or an error), as a new page so it shows even if no message got through. */
  show(markdown: string, status: string): void {
    if (this.panel !== undefined) {
      const nonce = randomBytes(16).toString("base64");
      this.panel.webview.html = panelPage(this.title, status, renderMarkdown(markdown), nonce,
        this.panel.webview.cspSource);
    }
  }

  dispose(): void {
    this.cancel?.cancel();
    this.panel?.dispose();
  }
}
