// The IETF RateLimit header fields for a decision, per draft-ietf-httpapi-ratelimit-headers-10
// (https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/; -11 keeps the syntax):
//
//   RateLimit-Policy: a Structured-Fields List of quota policies, each a String naming the
//     policy with parameters q (quota, in requests) and w (window, in seconds);
//   RateLimit: a List naming the same policies with r (remaining quota) and t (seconds until
//     the quota resets).
//
// A token bucket maps onto that as: q = capacity, w = the time to refill from empty, r = whole
// tokens left, t = seconds until the bucket is full. On a denial the draft asks that t point at
// the same moment as Retry-After, so a short bucket reports its retry-after instead.
// Seconds are rounded up: the draft allows no fractions, and rounding down would invite clients
// back early.

import type { BucketStatus, Decision } from "../types.js";

export interface RateLimitHeaderFields {
  readonly "RateLimit-Policy": string;
  readonly RateLimit: string;
}

const seconds = (ms: number): number => Math.max(0, Math.ceil(ms / 1000));

/** An sf-String: printable ASCII with `"` and `\` escaped (RFC 9651, section 4.1.6). */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function sfString(s: string): string {
  if (PLAIN.test(s)) return `"${s}"`;
  return `"${s.replace(/[^\x20-\x7e]/g, "?").replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

function windowSeconds(b: BucketStatus): number {
  const { capacity, refillTokens, refillPeriodMs } = b.limit;
  if (refillTokens <= 0) return 0;
  return Math.max(1, Math.ceil((capacity * refillPeriodMs) / refillTokens / 1000));
}

/** The two fields for a decision, or undefined when it carries no bucket (fail-open/closed). */
export function rateLimitHeaders(decision: Decision): RateLimitHeaderFields | undefined {
  if (decision.buckets.length === 0) return undefined;
  const seen = new Map<string, number>();
  const policies: string[] = [];
  const states: string[] = [];
  for (const b of decision.buckets) {
    // The draft forbids two items with the same name; two keys under one policy get a suffix.
    const n = (seen.get(b.policy) ?? 0) + 1;
    seen.set(b.policy, n);
    const name = sfString(n === 1 ? b.policy : `${b.policy}-${n}`);
    const resetMs = !decision.allowed && b.retryAfterMs > 0 ? b.retryAfterMs : b.resetAfterMs;
    policies.push(`${name};q=${b.limit.capacity};w=${windowSeconds(b)}`);
    states.push(`${name};r=${b.remaining};t=${seconds(resetMs)}`);
  }
  return { "RateLimit-Policy": policies.join(", "), RateLimit: states.join(", ") };
}

/** Retry-After in delay-seconds for a denial: at least 1, since 0 invites an immediate retry. */
export function retryAfterSeconds(decision: Decision): number {
  return Math.max(1, seconds(decision.retryAfterMs));
}
