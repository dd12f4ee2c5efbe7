// Turns a Consume/Query request into validated decisions, or a TokenmeshError naming the first
// bad field and its limit. Validation finishes before any bucket is touched, so a bad request
// changes no state.

import type { Policy } from "../config/load.ts";
import { LIMIT_BOUNDS, makeRate, type Rate } from "../core/rate.ts";
import type { Result } from "../core/result.ts";
import { type BucketTarget, bucketId, type ValidDecision } from "../limiter/limiter.ts";
import { invalidArgument, TokenmeshError } from "./errors.ts";
import type { DecodedLimit as InlineLimit } from "./request-decoder.ts";

/** A bucket as any door names it: the gRPC decoder's output and protobuf-es messages both fit. */
export interface PlainBucket {
  readonly policy: string;
  readonly key: string;
  readonly cost?: number | undefined;
  readonly limit?: InlineLimit | undefined;
  /** A field the decoder could not take as sent (not UTF-8, a cost beyond its uint32), and why. */
  readonly invalid?: { readonly field: string; readonly problem: string } | undefined;
}

export interface PlainDecision {
  readonly buckets: readonly PlainBucket[];
}

type BucketRequest = PlainBucket;
type Decision = PlainDecision;

export interface RequestLimits {
  readonly maxDecisionsPerRequest: number;
  readonly maxBucketsPerDecision: number;
  readonly maxKeyBytes: number;
  readonly maxPolicyNameBytes: number;
}

export type ValidationResult = Result<ValidDecision[], TokenmeshError>;

const describeKnown = (policies: ReadonlyMap<string, Policy>): string => {
  const names = [...policies.keys()];
  return names.length <= 10 ? names.join(", ") : `${names.slice(0, 10).join(", ")}, ... (${names.length} in all)`;
};

function inlineRate(limit: InlineLimit, policy: Policy, field: string): Rate | TokenmeshError {
  const inline = policy.inline;
  if (inline === undefined) {
    return invalidArgument(
      field,
      `policy "${policy.name}" does not accept inline limits (set policies.${policy.name}.inline in the server config)`,
    );
  }
  const capacity = Number(limit.capacity);
  const refillTokens = Number(limit.refillTokens);
  const periodMs = Number(limit.refillPeriodMs);
  if (capacity < 1 || capacity > inline.maxCapacity) {
    return invalidArgument(`${field}.capacity`, `must be 1..${inline.maxCapacity} for policy "${policy.name}", got ${limit.capacity}`);
  }
  // Bounds are checked on the exact uint64 values: a Number above 2^53 is already rounded.
  if (limit.refillTokens < 1n || limit.refillTokens > BigInt(LIMIT_BOUNDS.maxRefillTokens)) {
    return invalidArgument(`${field}.refill_tokens`, `must be 1..${LIMIT_BOUNDS.maxRefillTokens}, got ${limit.refillTokens}`);
  }
  if (periodMs < 1 || periodMs > 366 * 24 * 3600 * 1000) {
    return invalidArgument(`${field}.refill_period_ms`, `must be 1..${366 * 24 * 3600 * 1000} (one year), got ${limit.refillPeriodMs}`);
  }
  const perSecond = (refillTokens * 1000) / periodMs;
  if (perSecond > inline.maxRefillPerSecond) {
    return invalidArgument(
      `${field}.refill_tokens`,
      `refill of ${perSecond} tokens/s exceeds the policy's limit of ${inline.maxRefillPerSecond} tokens/s`,
    );
  }
  const made = makeRate({ capacity, refillTokens, refillPeriodUs: periodMs * 1000 });
  if (!made.ok) return invalidArgument(field, made.error.message);
  return made.value;
}

function validateBucket(
  b: BucketRequest,
  field: string,
  policies: ReadonlyMap<string, Policy>,
  limits: RequestLimits,
): BucketTarget | TokenmeshError {
  if (b.invalid !== undefined) return invalidArgument(`${field}.${b.invalid.field}`, b.invalid.problem);
  if (b.policy.length === 0) return invalidArgument(`${field}.policy`, "is required");
  const policy = b.policy.length <= limits.maxPolicyNameBytes ? policies.get(b.policy) : undefined;
  if (policy === undefined) {
    const shown = b.policy.length > 64 ? `${b.policy.slice(0, 64)}...` : b.policy;
    return invalidArgument(`${field}.policy`, `unknown policy "${shown}" (known: ${describeKnown(policies)})`);
  }
  const keyBytes = Buffer.byteLength(b.key, "utf8");
  if (keyBytes === 0 || keyBytes > limits.maxKeyBytes) {
    return invalidArgument(`${field}.key`, `must be 1..${limits.maxKeyBytes} bytes of UTF-8, got ${keyBytes}`);
  }
  let rate = policy.rate;
  if (b.limit !== undefined) {
    const r = inlineRate(b.limit, policy, `${field}.limit`);
    if (r instanceof TokenmeshError) return r;
    rate = r;
  }
  const cost = b.cost ?? 1;
  if (cost < 1) return invalidArgument(`${field}.cost`, "must be at least 1 (omit it for 1), got 0");
  if (cost > rate.capacity) {
    return invalidArgument(`${field}.cost`, `${cost} exceeds the bucket's capacity of ${rate.capacity}, so it could never be allowed`);
  }
  // An inline limit is the request's own: the policy's switch (if any) is not its history.
  const target: BucketTarget = {
    policy: policy.name,
    id: bucketId(policy.name, b.key),
    rate,
    cost,
    change: b.limit === undefined ? policy.change : undefined,
  };
  return policy.strict === undefined ? target : { ...target, strict: policy.strict };
}

function validateDecision(
  d: Decision,
  field: string,
  policies: ReadonlyMap<string, Policy>,
  limits: RequestLimits,
): ValidDecision | TokenmeshError {
  const n = d.buckets.length;
  if (n === 0 || n > limits.maxBucketsPerDecision) {
    return invalidArgument(`${field}.buckets`, `must hold 1..${limits.maxBucketsPerDecision} buckets, got ${n}`);
  }
  const targets: BucketTarget[] = new Array(n);
  for (let j = 0; j < n; j++) {
    const t = validateBucket(d.buckets[j] as BucketRequest, `${field}.buckets[${j}]`, policies, limits);
    if (t instanceof TokenmeshError) return t;
    for (let k = 0; k < j; k++) {
      if ((targets[k] as BucketTarget).id === t.id) {
        return invalidArgument(`${field}.buckets[${j}]`, `names the same bucket as buckets[${k}]; put the total cost on one entry`);
      }
    }
    targets[j] = t;
  }
  return targets;
}

export function validateDecisions(
  decisions: readonly Decision[],
  policies: ReadonlyMap<string, Policy>,
  limits: RequestLimits,
): ValidationResult {
  const n = decisions.length;
  if (n === 0 || n > limits.maxDecisionsPerRequest) {
    return { ok: false, error: invalidArgument("decisions", `must hold 1..${limits.maxDecisionsPerRequest} decisions, got ${n}`) };
  }
  const out: ValidDecision[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const d = validateDecision(decisions[i] as Decision, `decisions[${i}]`, policies, limits);
    if (d instanceof TokenmeshError) return { ok: false, error: d };
    out[i] = d;
  }
  return { ok: true, value: out };
}
