// Checks what the client can check alone, before a call joins a batch: the service refuses a
// whole request if one decision in it is malformed, so a bad call caught here cannot delay or
// fail its neighbours. Limits that depend on the server's config (key length, cost above
// capacity, unknown policy) are still checked there; see `isolateInvalid` in limiter.ts.

import { invalidArgument, type TokenmeshError } from "./errors.js";
import type { BucketRequest } from "./types.js";

export const MAX_BUCKETS_PER_DECISION = 16;
const MAX_UINT32 = 0xffff_ffff;

const positiveInt = (v: unknown, max: number): boolean => typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= max;

function checkBucket(b: BucketRequest, field: string): TokenmeshError | undefined {
  if (typeof b !== "object" || b === null) return invalidArgument(field, "must be an object { policy, key, cost? }");
  if (typeof b.policy !== "string" || b.policy.length === 0) return invalidArgument(`${field}.policy`, "must be a non-empty string");
  if (typeof b.key !== "string" || b.key.length === 0) return invalidArgument(`${field}.key`, "must be a non-empty string");
  if (b.cost !== undefined && !positiveInt(b.cost, MAX_UINT32)) {
    return invalidArgument(`${field}.cost`, `must be an integer in 1..${MAX_UINT32}, got ${String(b.cost)}`);
  }
  if (b.limit !== undefined) {
    for (const k of ["capacity", "refillTokens", "refillPeriodMs"] as const) {
      if (!positiveInt(b.limit[k], Number.MAX_SAFE_INTEGER)) {
        return invalidArgument(`${field}.limit.${k}`, `must be a positive integer, got ${String(b.limit[k])}`);
      }
    }
  }
  return undefined;
}

export function checkDecision(buckets: readonly BucketRequest[]): TokenmeshError | undefined {
  if (!Array.isArray(buckets) || buckets.length === 0 || buckets.length > MAX_BUCKETS_PER_DECISION) {
    return invalidArgument(
      "buckets",
      `must hold 1..${MAX_BUCKETS_PER_DECISION} buckets, got ${Array.isArray(buckets) ? buckets.length : typeof buckets}`,
    );
  }
  if (buckets.length === 1) return checkBucket(buckets[0] as BucketRequest, "request"); // the common case: nothing to de-duplicate
  const seen = new Set<string>();
  for (let i = 0; i < buckets.length; i++) {
    const b = buckets[i] as BucketRequest;
    const field = buckets.length === 1 ? "request" : `buckets[${i}]`;
    const problem = checkBucket(b, field);
    if (problem !== undefined) return problem;
    const id = `${b.policy}\u0000${b.key}`;
    if (seen.has(id)) return invalidArgument(field, "names the same bucket twice; put the total cost on one entry");
    seen.add(id);
  }
  return undefined;
}
