// Whether suggestions are asked for while typing: on/off, and snoozed until a time.

export class CompletionGate {
  private snoozedUntilMs: number | undefined;

  constructor(public enabled: boolean) {}

  snooze(minutes: number, nowMs: number): void {
    this.snoozedUntilMs = nowMs + minutes * 60_000;
  }

  resume(): void {
    this.snoozedUntilMs = undefined;
  }

  /** The end of the snooze, or undefined when not snoozed (an expired snooze is forgotten). */
  snoozedUntil(nowMs: number): number | undefined {
    if (this.snoozedUntilMs !== undefined && nowMs >= this.snoozedUntilMs) {
      this.snoozedUntilMs = undefined;
    }
    return this.snoozedUntilMs;
  }

  /** Automatic (typing) requests need the gate open; a completion asked for by hand always goes. */
  allows(invokedByHand: boolean, nowMs: number): boolean {
    return invokedByHand || (this.enabled && this.snoozedUntil(nowMs) === undefined);
  }
}
