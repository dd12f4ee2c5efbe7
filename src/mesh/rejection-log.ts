// Log lines for refused peers, at most one per reason every 10 s (with how many were refused
// since): a port scanner or a misconfigured peer retrying every 50 ms must not flood the log.
// The counts themselves (tokenmesh_peer_rejected_total) are never sampled.

import type { Logger } from "pino";

const EVERY_MS = 10_000;

export class RejectionLog {
  readonly #last = new Map<string, { at: number; unlogged: number }>();

  constructor(
    private readonly log: Logger,
    private readonly now: () => number = () => performance.now(),
  ) {}

  report(reason: string, fields: Record<string, unknown>, message: string): void {
    const t = this.now();
    const seen = this.#last.get(reason);
    if (seen !== undefined && t - seen.at < EVERY_MS) {
      seen.unlogged++;
      return;
    }
    this.log.warn({ ...fields, refusedSinceLastLog: (seen?.unlogged ?? 0) + 1 }, message);
    this.#last.set(reason, { at: t, unlogged: 0 });
  }
}
