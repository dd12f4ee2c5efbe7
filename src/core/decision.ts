// An all-or-nothing decision over several buckets: allowed only if every bucket holds its
// cost, and then every bucket is debited; if denied, none is. Pure over a `BucketAccess`.

import { type BucketReport, report } from "./bucket.ts";
import type { Rate } from "./rate.ts";

/** How a decision reads and debits one bucket; the store behind it is the caller's. */
export interface BucketAccess {
  readonly rate: Rate;
  readonly cost: number;
  /** Level in units at the decision time. */
  level(): number;
  /** Takes `units` at the decision time. Called only once every bucket has been checked. */
  debit(units: number): void;
  /** Optional: told that a consuming decision including this bucket was denied (demand it did not get). */
  denied?(): void;
  /**
   * Optional: microseconds until this bucket could admit its cost, when that is longer than its
   * level at its rate says (share mode: a replica's share refills at a fraction of the rate).
   * Asked only on a denied decision.
   */
  waitUs?(): number;
}

export interface DecisionOutcome {
  readonly allowed: boolean;
  /** Microseconds until the whole decision could succeed: the slowest bucket's wait. */
  readonly retryAfterUs: number;
  readonly buckets: readonly BucketReport[];
  /** Set by the edge on a denied decision: per bucket, why it denied (undefined: it held its cost). */
  readonly denyReasons?: readonly ("tokens" | "escrow" | undefined)[];
  /** Strict buckets: whole tokens this replica's share holds (undefined for other buckets). */
  readonly heldTokens?: readonly (number | undefined)[];
}

export function decide(buckets: readonly BucketAccess[], consume: boolean): DecisionOutcome {
  const levels = buckets.map((b) => b.level());
  let allowed = true;
  for (let i = 0; i < buckets.length; i++) {
    const b = buckets[i] as BucketAccess;
    if ((levels[i] as number) < b.cost * b.rate.unitsPerToken) allowed = false;
  }
  if (allowed && consume) {
    for (let i = 0; i < buckets.length; i++) {
      const b = buckets[i] as BucketAccess;
      const units = b.cost * b.rate.unitsPerToken;
      b.debit(units);
      levels[i] = (levels[i] as number) - units;
    }
  }
  if (!allowed && consume) for (const b of buckets) b.denied?.();
  const reports = buckets.map((b, i) => {
    const r = report(b.rate, levels[i] as number, allowed && consume ? 0 : b.cost);
    const longer = !allowed && b.waitUs !== undefined ? b.waitUs() : 0;
    return longer > r.retryAfterUs ? { ...r, retryAfterUs: longer } : r;
  });
  let retryAfterUs = 0;
  if (!allowed) for (const r of reports) retryAfterUs = Math.max(retryAfterUs, r.retryAfterUs);
  return { allowed, retryAfterUs, buckets: reports };
}
