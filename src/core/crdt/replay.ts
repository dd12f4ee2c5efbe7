// The level of a key as a pure function of (state, t), and the fold, which is the same walk
// stopped at a target and written back as a new prefix. Sharing one walk is what makes
// level(fold(S), t) = level(S, t) hold by construction.
//
// The walk: start at tau from the prefix level; switch limit at max(tEff, tau) if the config
// is newer than the prefix's (trap 10); charge late data once, capped at C (traps 6 and 7);
// then replay tail entries in slot order with the single-bucket formula
//   L <- min(cap, L + q * (slot - prev)) - charge
// which is GCRA with debt allowed. Refill is computed from absolute times in exact integer
// units, so nothing accumulates per slot. In-flight debt is never floored (trap 7).

import { convertLevel, type Rate } from "../rate.ts";
import type { IncId } from "./incarnation.ts";
import { type KeyConfig, sameConfig } from "./key-config.ts";
import type { KeyState } from "./key-state.ts";

/** Levels saturate here rather than lose exactness (trap 11: saturate arithmetic). */
const LEVEL_FLOOR = -(2 ** 52);

export interface Walk {
  /** Level at the end time, in units of `config.rate`. */
  level: number;
  config: KeyConfig;
  /** Running total per incarnation after the walk: max(F, K, c1 of charged entries). */
  running: Map<IncId, number>;
  /** Late charge applied at tau and the part the cap forgave (tokens). */
  lateCharged: number;
  forgiven: number;
  /** Number of leading entries consumed (all slots < end for a fold). */
  consumed: number;
}

/**
 * Level after `elapsedUs` of refill, saturating at capacity. rate.ts's refillUnits saturates the
 * refill itself at one capacity, which is right only from a non-negative level: a replicated
 * level can sit many C below zero (in-flight debt), and must climb back at q per microsecond.
 */
export function refilled(rate: Rate, level: number, elapsedUs: number): number {
  if (elapsedUs <= 0) return level;
  const gap = rate.capacityUnits - level;
  if (gap <= 0) return Math.min(level, rate.capacityUnits);
  return elapsedUs >= Math.ceil(gap / rate.unitsPerMicro) ? rate.capacityUnits : level + elapsedUs * rate.unitsPerMicro;
}

/**
 * Tokens an entry adds, given the running total already accounted for its incarnation.
 * Known incarnation: everything up to c1 is consumption, so charge c1 - known, gap included.
 * (Charging c1 - max(c0, known), as the notes put it, loses a gap for good once the fold moves
 * past it: the missing entry arrives below tau, its c1 is below F, and K - F never sees it.)
 * Unknown incarnation in this key (collected, or never seen): (0, c0] is before our cut, charge
 * c1 - c0 only: entries are self-describing so a dropped key never re-charges history.
 */
function chargeOf(running: Map<IncId, number>, inc: IncId, c0: number, c1: number): number {
  const seen = running.get(inc);
  if (seen === undefined) {
    running.set(inc, c1);
    return c1 - c0;
  }
  if (c1 <= seen) return 0;
  running.set(inc, c1);
  return c1 - seen;
}

function sat(level: number): number {
  return Math.max(level, LEVEL_FLOOR);
}

/**
 * Walks the state to `end`. With `fold`, entries at slots >= end are left out (they stay in the
 * tail); without, entries at slots <= end are replayed and later ones (a peer's clock slightly
 * ahead) are charged at `end`, so known consumption is never ignored.
 */
export function walk(k: KeyState, end: number, fold: boolean): Walk {
  const p = k.prefix;
  let config = p.config;
  let rate: Rate = config.rate;
  let level = p.level;
  let at = p.tau;
  const pending = sameConfig(k.config, config) ? undefined : k.config;
  const eff = pending === undefined ? Number.POSITIVE_INFINITY : Math.max(pending.tEff, p.tau);

  const advance = (to: number): void => {
    if (pending !== undefined && config !== pending && eff <= to) {
      if (eff > at) level = refilled(rate, level, eff - at);
      at = Math.max(at, eff);
      level = convertLevel(rate, pending.rate, level);
      config = pending;
      rate = pending.rate;
    }
    if (to > at) {
      level = refilled(rate, level, to - at);
      at = to;
    }
  };
  advance(p.tau);

  // Late data: what is known below tau beyond what was folded, charged once (trap 6) and
  // capped at C in total (trap 7: cap late charges, never the in-flight debt).
  const running = new Map<IncId, number>(p.F);
  let late = 0;
  for (const [inc, known] of k.K) {
    const folded = p.F.get(inc) ?? 0;
    if (known > folded) {
      late += known - folded;
      running.set(inc, known);
    }
  }
  const lateCharged = Math.min(late, rate.capacity);
  level = sat(level - lateCharged * rate.unitsPerToken);

  let consumed = 0;
  const entries = k.entries;
  for (; consumed < entries.length; consumed++) {
    const e = entries[consumed];
    if (e === undefined || (fold ? e.slot >= end : e.slot > end)) break;
    advance(e.slot);
    level = sat(level - chargeOf(running, e.inc, e.c0, e.c1) * rate.unitsPerToken);
  }
  advance(end);
  if (!fold) {
    for (let j = consumed; j < entries.length; j++) {
      const e = entries[j];
      if (e === undefined) break;
      level = sat(level - chargeOf(running, e.inc, e.c0, e.c1) * rate.unitsPerToken);
    }
  }
  return { level, config, running, lateCharged, forgiven: late - lateCharged, consumed };
}

/** Level of the key at `t` (units of the limit in force at t). Never below the prefix's time. */
export function levelAt(k: KeyState, t: number): { level: number; rate: Rate } {
  const w = walk(k, Math.max(t, k.prefix.tau), false);
  return { level: w.level, rate: w.config.rate };
}
