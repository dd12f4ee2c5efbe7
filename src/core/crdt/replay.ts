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
import type { Entry, KeyState } from "./key-state.ts";

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
 * The walk as a resumable cursor: `consume` entries in slot order, `peek` the level at a later
 * time without moving. `walk` (folds, the reference level) and the replica's per-key level
 * cache (level-cache.ts) both run on it, so they do the same arithmetic in the same order.
 * Invariant: after consuming entry j, `at` is j's slot (a limit switch at or before the slot
 * leaves `at` there too), which is what lets the cache re-charge that entry in place.
 */
export class Walker {
  level: number;
  config: KeyConfig;
  rate: Rate;
  at: number;
  readonly running: Map<IncId, number>;
  readonly lateCharged: number;
  readonly forgiven: number;
  /** The entry array walked (a fold or normalize replaces it: a cache over another is stale). */
  readonly entries: readonly Entry[];
  /** Number of leading entries of `entries` consumed. */
  consumed = 0;
  private readonly pending: KeyConfig | undefined;
  private readonly eff: number;

  constructor(k: KeyState) {
    const p = k.prefix;
    this.entries = k.entries;
    this.config = p.config;
    this.rate = p.config.rate;
    this.level = p.level;
    this.at = p.tau;
    this.pending = sameConfig(k.config, p.config) ? undefined : k.config;
    this.eff = this.pending === undefined ? Number.POSITIVE_INFINITY : Math.max(this.pending.tEff, p.tau);
    this.advance(p.tau);
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
    this.running = running;
    const lateCharged = Math.min(late, this.rate.capacity);
    this.lateCharged = lateCharged;
    this.forgiven = late - lateCharged;
    this.level = sat(this.level - lateCharged * this.rate.unitsPerToken);
  }

  /** Refills (and switches limit at eff) up to `to`. */
  advance(to: number): void {
    const pending = this.pending;
    if (pending !== undefined && this.config !== pending && this.eff <= to) {
      if (this.eff > this.at) this.level = refilled(this.rate, this.level, this.eff - this.at);
      this.at = Math.max(this.at, this.eff);
      this.level = convertLevel(this.rate, pending.rate, this.level);
      this.config = pending;
      this.rate = pending.rate;
    }
    if (to > this.at) {
      this.level = refilled(this.rate, this.level, to - this.at);
      this.at = to;
    }
  }

  /** Charges one entry at the current time. */
  charge(e: Entry): void {
    this.level = sat(this.level - chargeOf(this.running, e.inc, e.c0, e.c1) * this.rate.unitsPerToken);
  }

  /** Consumes the next entry: refill to its slot, then charge it. */
  consume(e: Entry): void {
    this.advance(e.slot);
    this.charge(e);
    this.consumed += 1;
  }

  /**
   * The last consumed entry `e` (its slot is `at`) grew: charge the growth as if it had been
   * there when consumed. Exact: charges at one time commute with the saturation at the floor.
   */
  raiseLast(e: Entry): void {
    const known = this.running.get(e.inc) ?? e.c1;
    if (e.c1 > known) {
      this.level = sat(this.level - (e.c1 - known) * this.rate.unitsPerToken);
      this.running.set(e.inc, e.c1);
    }
  }

  /**
   * Level at `end` (>= at) with every entry not consumed yet charged at `end`, as `walk(k, end,
   * false)` computes it; consumes what is due first. Units of `configAt(end)`.
   */
  levelAtEnd(end: number): number {
    const entries = this.entries;
    while (this.consumed < entries.length) {
      const e = entries[this.consumed] as Entry;
      if (e.slot > end) break;
      this.consume(e);
    }
    let level = this.peek(end);
    if (this.consumed < entries.length) {
      // Stamped after `end` (a peer's clock slightly ahead): charged now, on a copy.
      const rate = this.configAt(end).rate;
      const running = new Map(this.running);
      for (let j = this.consumed; j < entries.length; j++) {
        const e = entries[j] as Entry;
        level = sat(level - chargeOf(running, e.inc, e.c0, e.c1) * rate.unitsPerToken);
      }
    }
    return level;
  }

  /** The config `advance(to)` would leave in force. */
  configAt(to: number): KeyConfig {
    return this.pending !== undefined && this.config !== this.pending && this.eff <= to ? this.pending : this.config;
  }

  /** The level `advance(to)` would leave, without moving (units of `configAt(to)`). */
  peek(to: number): number {
    const pending = this.pending;
    let level = this.level;
    let at = this.at;
    let rate = this.rate;
    if (pending !== undefined && this.config !== pending && this.eff <= to) {
      if (this.eff > at) level = refilled(rate, level, this.eff - at);
      at = Math.max(at, this.eff);
      level = convertLevel(rate, pending.rate, level);
      rate = pending.rate;
    }
    return to > at ? refilled(rate, level, to - at) : level;
  }
}

/**
 * Walks the state to `end`. With `fold`, entries at slots >= end are left out (they stay in the
 * tail); without, entries at slots <= end are replayed and later ones (a peer's clock slightly
 * ahead) are charged at `end`, so known consumption is never ignored.
 */
export function walk(k: KeyState, end: number, fold: boolean): Walk {
  const w = new Walker(k);
  const entries = k.entries;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as Entry;
    if (fold ? e.slot >= end : e.slot > end) break;
    w.consume(e);
  }
  const consumed = w.consumed;
  w.advance(end);
  if (!fold) for (let j = consumed; j < entries.length; j++) w.charge(entries[j] as Entry);
  return { level: w.level, config: w.config, running: w.running, lateCharged: w.lateCharged, forgiven: w.forgiven, consumed };
}

/**
 * `keyLevelAt(k, end)` for a key with no tail, nothing late and no pending limit (a new key, or
 * one just folded), without a walker: what the walk would do, refill from tau. Undefined when
 * the key is not of that shape.
 */
export function levelWithoutTail(k: KeyState, end: number): number | undefined {
  const p = k.prefix;
  if (k.entries.length > 0 || k.K.size > 0 || !sameConfig(k.config, p.config)) return undefined;
  return refilled(p.config.rate, sat(p.level), end - p.tau);
}

/** Level of the key at `t` (units of the limit in force at t). Never below the prefix's time. */
export function keyLevelAt(k: KeyState, t: number): { level: number; rate: Rate } {
  const w = walk(k, Math.max(t, k.prefix.tau), false);
  return { level: w.level, rate: w.config.rate };
}
