// The public request and answer shapes, and the mapping from the decoded wire answer. Wire
// durations are uint64 microseconds; answers use whole milliseconds, rounded up so a caller that
// waits `retryAfterMs` is never early.

import type { WireResult } from "./wire/decision-codec.js";

/** A limit sent with the request instead of the policy's (only where the policy allows it). */
export interface InlineLimit {
  readonly capacity: number;
  readonly refillTokens: number;
  readonly refillPeriodMs: number;
}

export interface BucketRequest {
  /** Policy name from the server's config. */
  readonly policy: string;
  /** Bucket key within the policy (API key, IP, user id, ...). */
  readonly key: string;
  /** Tokens to take; 1 when absent. */
  readonly cost?: number;
  readonly limit?: InlineLimit;
}

/** One bucket, or up to 16 distinct buckets decided all-or-nothing. */
export type DecisionRequest = BucketRequest | { readonly buckets: readonly BucketRequest[] };

export interface BucketStatus {
  readonly policy: string;
  readonly key: string;
  readonly remaining: number;
  readonly retryAfterMs: number;
  readonly resetAfterMs: number;
  readonly limit: InlineLimit;
}

/**
 * Where an answer came from: the service, the local deny cache, or the configured failure mode
 * when no address answered in time.
 */
export type DecisionSource = "server" | "deny-cache" | "fail-open" | "fail-closed";

export interface Decision {
  readonly allowed: boolean;
  /** The fewest tokens left in any of the decision's buckets. */
  readonly remaining: number;
  /** Milliseconds until the whole decision could succeed; 0 when allowed. */
  readonly retryAfterMs: number;
  /** Milliseconds until every bucket of the decision is full again. */
  readonly resetAfterMs: number;
  /** One status per requested bucket, in request order; empty for fail-open/fail-closed answers. */
  readonly buckets: readonly BucketStatus[];
  readonly source: DecisionSource;
}

export const bucketsOf = (request: DecisionRequest): readonly BucketRequest[] => ("buckets" in request ? request.buckets : [request]);

/** Whole milliseconds, rounded up. */
const usToMs = (us: number): number => Math.ceil(us / 1000);

export function fromWireResult(requested: readonly BucketRequest[], result: WireResult): Decision {
  const buckets = result.buckets.map((s, i): BucketStatus => {
    const asked = requested[i];
    return {
      policy: asked?.policy ?? "",
      key: asked?.key ?? "",
      remaining: s.remaining,
      retryAfterMs: usToMs(s.retryAfterUs),
      resetAfterMs: usToMs(s.resetAfterUs),
      limit: { capacity: s.capacity, refillTokens: s.refillTokens, refillPeriodMs: s.refillPeriodMs },
    };
  });
  return summarize(result.allowed, usToMs(result.retryAfterUs), buckets, "server");
}

export function summarize(allowed: boolean, retryAfterMs: number, buckets: readonly BucketStatus[], source: DecisionSource): Decision {
  let remaining = buckets.length === 0 ? 0 : Number.POSITIVE_INFINITY;
  let resetAfterMs = 0;
  for (const b of buckets) {
    remaining = Math.min(remaining, b.remaining);
    resetAfterMs = Math.max(resetAfterMs, b.resetAfterMs);
  }
  return { allowed, remaining, retryAfterMs: allowed ? 0 : retryAfterMs, resetAfterMs, buckets, source };
}
