// Remembers buckets the service just denied, so a caller hammering a denied key is answered
// locally until its retry-after passes, at no RPC. This is sound because a bucket refills no
// faster than its rate: one that needs T ms to hold `cost` tokens cannot hold `cost` or more
// sooner, whichever replica is asked. (A smaller cost might fit sooner, so it goes to the service.)
//
// Bounded: at `maxEntries` the oldest entry is dropped, so memory stays flat under a key-spraying
// abuser; the worst a dropped entry costs is one RPC.

import type { BucketRequest, BucketStatus, Decision } from "./types.js";
import { summarize } from "./types.js";

interface Entry {
  /** Clock time (ms) at which the bucket can hold `cost` again. */
  readonly untilMs: number;
  readonly cost: number;
  readonly status: BucketStatus;
}

export interface DenyCacheOptions {
  readonly maxEntries: number;
  /** Monotonic milliseconds. */
  readonly now: () => number;
}

// An inline limit is part of the identity: the soundness argument above holds for one rate only.
const idOf = (b: BucketRequest): string =>
  b.limit === undefined
    ? `${b.policy}\u0000${b.key}`
    : `${b.policy}\u0000${b.key}\u0000${b.limit.capacity}/${b.limit.refillTokens}/${b.limit.refillPeriodMs}`;

export class DenyCache {
  readonly #entries = new Map<string, Entry>();
  readonly #max: number;
  readonly #now: () => number;
  hits = 0;

  constructor(options: DenyCacheOptions) {
    this.#max = options.maxEntries;
    this.#now = options.now;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Records the buckets of a denied decision that were short of tokens. */
  remember(requested: readonly BucketRequest[], decision: Decision): void {
    if (this.#max === 0 || decision.allowed) return;
    const now = this.#now();
    decision.buckets.forEach((status, i) => {
      const asked = requested[i];
      if (asked === undefined || status.retryAfterMs <= 0) return;
      const id = idOf(asked);
      this.#entries.delete(id); // re-insert at the young end
      this.#entries.set(id, { untilMs: now + status.retryAfterMs, cost: asked.cost ?? 1, status });
      if (this.#entries.size > this.#max) {
        const oldest = this.#entries.keys().next();
        if (oldest.done !== true) this.#entries.delete(oldest.value);
      }
    });
  }

  /**
   * A local denial if any requested bucket is known to be short until later than now.
   * Its `buckets` lists only those known-short buckets, as last reported by the service.
   */
  check(requested: readonly BucketRequest[]): Decision | undefined {
    if (this.#entries.size === 0) return undefined;
    const now = this.#now();
    let retryAfterMs = 0;
    const short: BucketStatus[] = [];
    for (const asked of requested) {
      const id = idOf(asked);
      const entry = this.#entries.get(id);
      if (entry === undefined) continue;
      if (now >= entry.untilMs) {
        this.#entries.delete(id);
        continue;
      }
      if ((asked.cost ?? 1) < entry.cost) continue;
      const wait = Math.ceil(entry.untilMs - now);
      retryAfterMs = Math.max(retryAfterMs, wait);
      short.push({ ...entry.status, retryAfterMs: wait });
    }
    if (short.length === 0) return undefined;
    this.hits++;
    return summarize(false, retryAfterMs, short, "deny-cache");
  }
}
