// The explanation panel's content: the model's Markdown rendered to HTML (raw HTML in the answer
// is escaped, never run), the page around it, and which streamed partial results belong to it.

import MarkdownIt from "markdown-it";

const markdown = new MarkdownIt({ html: false, linkify: true });

export function renderMarkdown(text: string): string {
  return markdown.render(text);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The webview's page: `body` is rendered HTML; later updates arrive as `{html, status}` messages
 * handled by the page's one script (allowed by its nonce only).
 */
export function panelPage(title: string, status: string, body: string, nonce: string, cspSource: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${cspSource} 'unsafe-inline'; img-src ${cspSource} https: data:; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>${escapeHtml(title)}</title>
<style>
  body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); line-height: 1.5; padding: 0 1em; }
  #status { color: var(--vscode-descriptionForeground); font-style: italic; }
  pre { background: var(--vscode-textCodeBlock-background); padding: 0.5em; overflow-x: auto; }
  code { font-family: var(--vscode-editor-font-family); }
</style>
</head>
<body>
<h3>${escapeHtml(title)}</h3>
<div id="content">${body}</div>
<p id="status">${escapeHtml(status)}</p>
<script nonce="${nonce}">
  window.addEventListener("message", (event) => {
    const { html, status } = event.data;
    document.getElementById("content").innerHTML = html;
    document.getElementById("status").textContent = status;
  });
</script>
</body>
</html>`;
}

/**
 * `codeLlama/partialResult` carries the server's progress token, `code-llama-<kind>-<uuid>`,
 * which the client does not know in advance: the first explain/ask token seen after a request
 * starts is taken as that request's, and every other token is ignored until the next request.
 */
export class PartialFilter {
  private token: string | undefined;
  private active = false;
  private generation = 0;
  private text = "";

  /** A new request: returns its handle for stop(). */
  start(): number {
    this.token = undefined;
    this.text = "";
    this.active = true;
    return ++this.generation;
  }

  /**
   * `codeLlama/partialResult` `{token, delta, done}` carries what the answer gained since the last
   * one: returns the answer so far, or undefined for a message that is not this request's.
   */
  take(params: { token?: unknown; delta?: unknown; done?: unknown } | undefined): string | undefined {
    if (!this.accepts(params?.token) || typeof params?.delta !== "string") {
      return undefined;
    }
    this.text += params.delta;
    return this.text;
  }

  /** The request ended; a request that a newer one replaced ends without stopping the newer one. */
  stop(generation: number): void {
    if (generation === this.generation) {
      this.active = false;
    }
  }

  accepts(token: unknown): boolean {
    if (!this.active || typeof token !== "string") {
      return false;
    }
    if (this.token === undefined && /^code-llama-(explain|ask)-/.test(token)) {
      this.token = token;
    }
    return token === this.token;
  }
}
