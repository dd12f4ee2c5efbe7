// One token bucket on one replica: a level in exact units (see rate.ts) observed at a time.
// Pure: the caller passes the time; nothing here reads a clock.

import { convertLevel, type Rate, refillUnits, waitUs, wholeTokens } from "./rate.ts";

export interface BucketState {
  /** Level in units at `atUs` (never above the capacity, never negative on a single replica). */
  readonly level: number;
  readonly atUs: number;
}

/** A new bucket is full. */
export function fullBucket(rate: Rate, nowUs: number): BucketState {
  return { level: rate.capacityUnits, atUs: nowUs };
}

/**
 * Level at `nowUs`. A time before the last observation is treated as that observation, so a
 * clock step backwards never un-spends or re-spends tokens.
 */
export function bucketLevelAt(rate: Rate, state: BucketState, nowUs: number): number {
  const elapsed = nowUs - state.atUs;
  if (elapsed <= 0) return state.level;
  return Math.min(rate.capacityUnits, state.level + refillUnits(rate, elapsed));
}

/** A limit that replaced another at a set time: `from` held before `atUs`, the new one after. */
export interface RateSwitch {
  readonly from: Rate;
  readonly atUs: number;
}

/**
 * Level at `nowUs` under `to` of a bucket last observed under `from`, the limit switching at
 * `atUs`: refilled at the old rate up to the switch, re-expressed there as min(level, C_new) in
 * the new units (as the mesh's walk does, core/crdt/replay.ts), then refilled at the new rate.
 * Taking the switch at its own time rather than at the access makes the level independent of
 * when the bucket happens to be read next.
 */
export function levelAcrossSwitch(to: Rate, change: RateSwitch, state: BucketState, nowUs: number): number {
  const atUs = Math.max(state.atUs, Math.min(change.atUs, nowUs));
  const atSwitch = convertLevel(change.from, to, bucketLevelAt(change.from, state, atUs));
  return bucketLevelAt(to, { level: atSwitch, atUs }, nowUs);
}

/** What a caller is told about one bucket. */
export interface BucketReport {
  /** The limit the level was computed under: what an answer reports, so it never differs from what is enforced. */
  readonly rate: Rate;
  /** Whole tokens left, rounded down (0 when in debt). */
  readonly remaining: number;
  /** Microseconds until `cost` tokens are available (0 if they are now). */
  readonly retryAfterUs: number;
  /** Microseconds until the bucket is full again. */
  readonly resetAfterUs: number;
}

export function report(rate: Rate, level: number, cost: number): BucketReport {
  return {
    rate,
    remaining: Math.max(0, wholeTokens(rate, level)),
    retryAfterUs: waitUs(rate, level, cost * rate.unitsPerToken),
    resetAfterUs: waitUs(rate, level, rate.capacityUnits),
  };
}
