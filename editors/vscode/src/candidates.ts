// The inline candidates shown for one request: empty ones and repeats dropped, order kept.
// VS Code cycles through what is left (Alt+] / Alt+[).

interface Position {
  line: number;
  character: number;
}

export interface Candidate {
  insertText: string | { value: string };
  range?: { start: Position; end: Position };
}

function key(item: Candidate): string {
  const text = typeof item.insertText === "string" ? item.insertText : item.insertText.value;
  const r = item.range;
  return r ? `${r.start.line}:${r.start.character}-${r.end.line}:${r.end.character}\u0000${text}` : `\u0000${text}`;
}

function isEmpty(item: Candidate): boolean {
  const text = typeof item.insertText === "string" ? item.insertText : item.insertText.value;
  return text.length === 0;
}

export function uniqueCandidates<T extends Candidate>(items: readonly T[]): T[] {
  const seen = new Set<string>();
  const result: T[] = [];
  for (const item of items) {
    const k = key(item);
    if (!isEmpty(item) && !seen.has(k)) {
      seen.add(k);
      result.push(item);
    }
  }
  return result;
}
