// Drives code-server's workbench in headless Chromium the way a user would: opens a file from
// the Explorer, types, waits for ghost text, accepts it with Tab and saves (again in a second file,
// typing into a bracket pair that VS Code auto-closes); then selects a file,
// runs "Code Llama: Explain" from the command palette and reads the panel, and runs "Code Llama:
// Generate Docstring" with the cursor in a function and saves; last, turns inline completions off
// from the status-bar item's menu. Writes what it saw
// as JSON (the pytest test asserts on it) and screenshots into the artifact folder.
// Usage: node drive_vscode.cjs CONFIG_JSON   (PLAYWRIGHT_CORE: the playwright-core folder)
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

const cfg = JSON.parse(process.argv[2]);
const report = { steps: [] };
const log = (step) => {
  report.steps.push(`${new Date().toISOString()} ${step}`);
  console.error(step);
};
const screenshot = async (page, name) => {
  const file = path.join(cfg.artifacts, name);
  await page.screenshot({ path: file });
  (report.screenshots ??= []).push(file);
};

async function openFromExplorer(page, name) {
  const row = page.locator(".explorer-folders-view .monaco-list-row", { hasText: name }).first();
  await row.waitFor({ timeout: 30_000 });
  await row.dblclick();
  await page.locator(`.tab.active[aria-label^="${name}"]`).waitFor({ timeout: 30_000 });
  await page.locator(".editor-instance .monaco-editor .view-lines").first().click();
}

async function runCommand(page, title) {
  await page.keyboard.press("F1");
  await page.locator(".quick-input-widget input").waitFor({ timeout: 15_000 });
  await page.keyboard.type(title, { delay: 20 });
  await page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first().waitFor({ timeout: 15_000 });
  await page.keyboard.press("Enter");
}

/** The file's new text once a save has changed it and two reads 100 ms apart agree (a save
 * truncates the file first: a read in between sees it empty). */
async function waitForFile(file, before, timeoutMs) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    const text = fs.readFileSync(file, "utf8");
    if ((text !== before && text === last) || Date.now() > end) {
      return text;
    }
    last = text;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The text of the webview that shows the explanation once its status line is empty (done). */
async function explanationText(page, timeoutMs) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    for (const frame of page.frames()) {
      const content = await frame.evaluate(() => {
        const node = document.getElementById("content");
        const status = document.getElementById("status");
        return node && status ? { text: node.innerText, html: node.innerHTML, status: status.textContent } : null;
      }).catch(() => null);
      if (content && content.text.trim() && !content.status) {
        return content;
      }
    }
    await page.waitForTimeout(200);
  }
  throw new Error("no explanation panel with text");
}

(async () => {
  const browser = await chromium.launch({
    executablePath: cfg.chromium,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  try {
    log("open the workbench");
    await page.goto(`${cfg.url}/?folder=${encodeURIComponent(cfg.workspace)}`);
    await page.locator(".monaco-workbench").waitFor({ timeout: 60_000 });
    log("wait for the extension's status item to say the model is ready");
    const status = page.locator('.statusbar [aria-label^="Code Llama: ready"]').first();
    await status.waitFor({ timeout: 120_000 });
    report.statusBefore = await status.getAttribute("aria-label");

    log(`open ${cfg.completion.file} and type`);
    const file = path.join(cfg.workspace, cfg.completion.file);
    const before = fs.readFileSync(file, "utf8");
    await openFromExplorer(page, cfg.completion.file);
    await page.keyboard.press("Control+Home");
    await page.keyboard.type(cfg.completion.type, { delay: 40 });
    await page.keyboard.press("Enter");
    log("wait for ghost text");
    const ghost = page.locator(".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text").first();
    await ghost.waitFor({ timeout: 60_000 });
    await page.waitForTimeout(300);  // let a longer suggestion finish rendering
    report.ghostText = await page.evaluate(() => {
      // The first line is inline, one span per syntax token; further lines are a view zone's lines.
      const text = (selector) => Array.from(document.querySelectorAll(selector), (node) => node.textContent);
      const first = text(".monaco-editor .view-lines .ghost-text-decoration").join("");
      return [first, ...text(".monaco-editor .ghost-text .view-line")].join("\n").replace(/\u00a0/g, " ");
    });
    await screenshot(page, "vscode-ghost-text.png");
    log("accept with Tab and save");
    await page.keyboard.press("Tab");
    await page.keyboard.press("Control+S");
    report.completedFile = await waitForFile(file, before, 15_000);
    report.statusAfter = await page.locator('.statusbar [aria-label^="Code Llama:"]').first().getAttribute("aria-label");

    if (cfg.pair) {
      log(`open ${cfg.pair.file} and type into a bracket pair that VS Code closes`);
      const pairFile = path.join(cfg.workspace, cfg.pair.file);
      const pairBefore = fs.readFileSync(pairFile, "utf8");
      await openFromExplorer(page, cfg.pair.file);
      await page.keyboard.press("Control+Home");
      for (const [i, line] of cfg.pair.lines.entries()) {
        if (i > 0) {
          await page.keyboard.press("Enter");  // VS Code indents the block
        }
        await page.keyboard.type(line, { delay: 40 });
      }
      log("wait for ghost text inside the pair");
      const pairGhost = page.locator(".monaco-editor .view-lines .ghost-text-decoration").first();
      await pairGhost.waitFor({ timeout: 60_000 });
      await page.waitForTimeout(300);
      Object.assign(report, await page.evaluate(() => {
        // The cursor's line as the buffer has it (ghost text left out), and the ghost text on it.
        const ghosts = Array.from(document.querySelectorAll(".monaco-editor .view-lines .ghost-text-decoration"));
        const line = ghosts[0].closest(".view-line").cloneNode(true);
        line.querySelectorAll(".ghost-text-decoration").forEach((node) => node.remove());
        const clean = (text) => text.replace(/\u00a0/g, " ");
        return { pairTypedLine: clean(line.textContent), pairGhostText: clean(ghosts.map((node) => node.textContent).join("")) };
      }));
      await screenshot(page, "vscode-pair-ghost-text.png");
      log("accept with Tab and save");
      await page.keyboard.press("Tab");
      await page.keyboard.press("Control+S");
      report.pairFile = await waitForFile(pairFile, pairBefore, 15_000);
    }

    log(`select all of ${cfg.explain.file} and run Code Llama: Explain`);
    await openFromExplorer(page, cfg.explain.file);
    await page.keyboard.press("Control+A");
    await runCommand(page, "Code Llama: Explain");
    const explanation = await explanationText(page, 90_000);
    report.explanationText = explanation.text;
    report.explanationHtml = explanation.html;
    await screenshot(page, "vscode-explain.png");

    log("put the cursor in the function's name and run Code Llama: Generate Docstring, then save");
    const explained = path.join(cfg.workspace, cfg.explain.file);
    const source = fs.readFileSync(explained, "utf8");
    await page.locator(".editor-instance .monaco-editor .view-lines").first().click();
    await page.keyboard.press("Control+Home");
    for (let i = 0; i < cfg.explain.docstringColumn; i++) {
      await page.keyboard.press("ArrowRight");
    }
    await runCommand(page, "Code Llama: Generate Docstring");
    await page.locator(`.tab.active.dirty[aria-label^="${cfg.explain.file}"]`).waitFor({ timeout: 60_000 });
    await page.keyboard.press("Control+S");
    report.docstringFile = await waitForFile(explained, source, 15_000);

    log("click the status-bar item and turn inline completions off");
    await page.locator('.statusbar [aria-label^="Code Llama:"]').first().click();
    await page.locator(".quick-input-list .monaco-list-row", { hasText: "Turn inline completions off" }).first().click();
    const off = page.locator('.statusbar [aria-label$="; inline completions off"]').first();
    await off.waitFor({ timeout: 15_000 });
    report.statusOff = await off.getAttribute("aria-label");
    log("done");
  } catch (error) {
    report.error = String(error && error.stack || error);
    await screenshot(page, "vscode-failure.png").catch(() => undefined);
  } finally {
    await browser.close();
    fs.writeFileSync(cfg.report, JSON.stringify(report, null, 1));
  }
})();
