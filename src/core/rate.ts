// A bucket's limit in exact integer units.
//
// A policy says "capacity C tokens, refilled at R tokens per P microseconds". Rather than round
// the refill to micro-tokens (which drifts over long idle periods), amounts are kept in
// "units" chosen so that the refill per microsecond is an integer:
//
//   T = P / R microseconds per token, reduced to lowest terms p / q
//   1 token = p units, refill = q units per microsecond, capacity = C * p units
//
// Every level is then an integer and every decision is exactly GCRA's (ITU-T I.371) with
// emission interval T, which is what the property tests compare against. All products are
// kept below 2^53 by the bounds checked in `makeRate`, so plain `number` arithmetic is exact.

import { type FieldError, fail, ok, type Result } from "./result.ts";

export interface LimitSpec {
  /** Bucket size in tokens; the bucket starts full. */
  readonly capacity: number;
  /** Tokens added per refill period. */
  readonly refillTokens: number;
  /** Refill period in microseconds. */
  readonly refillPeriodUs: number;
}

export interface Rate extends LimitSpec {
  /** Units per token (p). */
  readonly unitsPerToken: number;
  /** Units refilled per microsecond (q). */
  readonly unitsPerMicro: number;
  /** Capacity in units (C * p). */
  readonly capacityUnits: number;
  /** Microseconds from empty to full, rounded up: beyond it any bucket is full. */
  readonly fillTimeUs: number;
}

/** Largest integer that `number` represents exactly. */
export const MAX_EXACT = Number.MAX_SAFE_INTEGER;
/** Bounds a limit must respect; chosen so that every product below stays exact. */
export const LIMIT_BOUNDS = {
  maxCapacity: 1_000_000_000_000,
  maxRefillTokens: 1_000_000_000_000,
  minRefillPeriodUs: 1,
  /** One year: longer windows are quotas, not rate limits. */
  maxRefillPeriodUs: 366 * 24 * 3600 * 1_000_000,
} as const;

export type RateResult = Result<Rate, FieldError<keyof LimitSpec | "capacity*period">>;

function gcd(a: number, b: number): number {
  let x = a;
  let y = b;
  while (y !== 0) {
    const t = x % y;
    x = y;
    y = t;
  }
  return x;
}

function isPositiveInt(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0;
}

/** Validates a limit and derives its exact units. Never throws. */
export function makeRate(spec: LimitSpec): RateResult {
  const { capacity, refillTokens, refillPeriodUs } = spec;
  if (!isPositiveInt(capacity) || capacity > LIMIT_BOUNDS.maxCapacity) {
    return fail("capacity", `must be an integer in 1..${LIMIT_BOUNDS.maxCapacity}, got ${capacity}`);
  }
  if (!isPositiveInt(refillTokens) || refillTokens > LIMIT_BOUNDS.maxRefillTokens) {
    return fail("refillTokens", `must be an integer in 1..${LIMIT_BOUNDS.maxRefillTokens}, got ${refillTokens}`);
  }
  if (!isPositiveInt(refillPeriodUs) || refillPeriodUs > LIMIT_BOUNDS.maxRefillPeriodUs) {
    return fail(
      "refillPeriodUs",
      `must be an integer number of microseconds in 1..${LIMIT_BOUNDS.maxRefillPeriodUs}, got ${refillPeriodUs}`,
    );
  }
  const g = gcd(refillPeriodUs, refillTokens);
  const unitsPerToken = refillPeriodUs / g;
  const unitsPerMicro = refillTokens / g;
  const capacityUnits = capacity * unitsPerToken;
  // capacityUnits + unitsPerMicro bounds every intermediate value (see refill below).
  if (!Number.isSafeInteger(capacityUnits) || capacityUnits + unitsPerMicro > MAX_EXACT) {
    return fail(
      "capacity*period",
      `capacity × (period / refill) must stay below 2^53 units; got capacity ${capacity}, refill ${refillTokens} per ${refillPeriodUs} us`,
    );
  }
  const fillTimeUs = Math.ceil(capacityUnits / unitsPerMicro);
  return ok({ capacity, refillTokens, refillPeriodUs, unitsPerToken, unitsPerMicro, capacityUnits, fillTimeUs });
}

/** Units refilled over `elapsedUs`, saturated at a full bucket's worth (exact: no overflow). */
export function refillUnits(rate: Rate, elapsedUs: number): number {
  if (elapsedUs <= 0) return 0;
  if (elapsedUs >= rate.fillTimeUs) return rate.capacityUnits;
  return elapsedUs * rate.unitsPerMicro;
}

/** Whole tokens in `units`, rounded down. */
export function wholeTokens(rate: Rate, units: number): number {
  return Math.floor(units / rate.unitsPerToken);
}

/** Microseconds until `level` reaches `target` units, rounded up (0 if already there). */
export function waitUs(rate: Rate, level: number, target: number): number {
  if (level >= target) return 0;
  return Math.ceil((target - level) / rate.unitsPerMicro);
}

/** Same limit, so levels carry over unchanged. */
export function sameRate(a: Rate, b: Rate): boolean {
  return a.capacityUnits === b.capacityUnits && a.unitsPerToken === b.unitsPerToken && a.unitsPerMicro === b.unitsPerMicro;
}

/**
 * Re-expresses a level in another rate's units, rounding down and clamping to its capacity.
 * BigInt because level * p_new may pass 2^53; this runs only when a limit changes.
 */
export function convertLevel(from: Rate, to: Rate, level: number): number {
  if (from.unitsPerToken === to.unitsPerToken) return Math.min(level, to.capacityUnits);
  const scaled = (BigInt(level) * BigInt(to.unitsPerToken)) / BigInt(from.unitsPerToken);
  const negFix = level < 0 && (BigInt(level) * BigInt(to.unitsPerToken)) % BigInt(from.unitsPerToken) !== 0n ? -1n : 0n;
  const converted = Number(scaled + negFix);
  return Math.min(converted, to.capacityUnits);
}
