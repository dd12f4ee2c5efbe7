// The work an edge's timers trigger, as functions of the replica state and the raw clock:
// retiring silent incarnations, raising the horizon, folding, collecting full keys.

import { birthOf, isForgotten, makeIncarnationId } from "./incarnation.ts";
import { foldKey, foldKeyInto, isCollectable } from "./key-fold.ts";
import { hasTail, popDue, scheduleCollect, unlinkKey } from "./key-index.ts";
import { normalizeKey } from "./key-join.ts";
import type { KeyState } from "./key-state.ts";
import { markKeyChanged, writeRetirement } from "./local-change.ts";
import { resetOut } from "./peer-session.ts";
import { liveFloor, nextHorizon, raiseHorizon } from "./registry.ts";
import { keyLevelAt, levelWithoutTail } from "./replay.ts";
import { bump, type KeyRecord, type ReplicaState, stampAt } from "./replica-state.ts";

/**
 * Writes a retirement record for every incarnation silent (no watermark rise) for T_retire.
 * The record is replicated and final, so every replica ends up folding over the same set
 * (trap 9) even though the timeout that wrote it was local.
 */
export function retireSilent(s: ReplicaState, raw: number): void {
  const t = stampAt(s, raw);
  for (const [id, r] of s.reg.incs) {
    if (id === s.self || r.retired >= 0) continue;
    const heard = s.lastHeard.get(id);
    if (heard === undefined) {
      s.lastHeard.set(id, raw);
      continue;
    }
    if (raw - heard >= s.opts.retireAfterUs) {
      writeRetirement(s, r, t);
    }
  }
}

/** Moves the horizon over incarnations retired longer than forgetAfter, and forgets them. */
export function raiseOwnHorizon(s: ReplicaState, raw: number): void {
  const t = stampAt(s, raw);
  const h = nextHorizon(s.reg, t, s.opts.forgetAfterUs, birthOf(s.self));
  if (raiseHorizon(s.reg, h)) {
    bump(s);
    for (const id of [...s.lastHeard.keys()]) if (isForgotten(id, h)) s.lastHeard.delete(id);
  }
}

/**
 * Folds every key with a tail up to the live floor; applies the horizon to keys behind it.
 * Visits only keys that may have a tail (key-index.ts), and at an unchanged floor only those
 * that changed since the last pass: the others were folded to this floor already. A horizon
 * move (rare: a retirement older than forgetAfter) changes every key, and visits every key.
 */
export function foldAll(s: ReplicaState, raw: number): void {
  const floor = liveFloor(s.reg);
  stampAt(s, raw);
  if (s.reg.horizon > s.foldHorizon) {
    s.foldHorizon = s.reg.horizon;
    s.tails.clear();
    s.touched.clear();
    for (const rec of s.keys.values()) settleKey(s, rec, floor);
  } else {
    if (floor !== s.foldFloor) for (const rec of s.tails) settleKey(s, rec, floor);
    for (const rec of s.touched) settleKey(s, rec, floor);
    s.touched.clear();
  }
  s.foldFloor = floor;
}

/** One key of a fold pass; leaves it in `tails` if it still has a tail, else schedules collection. */
function settleKey(s: ReplicaState, rec: KeyRecord, floor: number | undefined): void {
  if (s.keys.get(rec.key) !== rec) {
    s.tails.delete(rec);
    return;
  }
  const k = rec.state;
  let changed = false;
  if (k.horizon < s.reg.horizon) {
    k.horizon = s.reg.horizon;
    normalizeKey(k);
    changed = true;
  }
  // Only a fold that moves data (entries before the floor, or late counts) is made: one that
  // would only move tau past a tail still ahead of the floor changes how the state is written,
  // not what it answers, yet it counts as a change, goes to every peer, and two replicas that
  // did it at different floors then trade prefixes that differ in nothing but tau.
  if (floor !== undefined && floor > k.prefix.tau && (k.K.size > 0 || (k.entries[0]?.slot ?? floor) < floor)) {
    // Own open slots are below our watermark only once closed, so this never folds an open slot.
    const late = k.prefix.lateCharged;
    const forgiven = k.prefix.forgiven;
    if (foldKeyInto(k, floor)) {
      s.stats.folds += 1;
      s.stats.maxLateCharge = Math.max(s.stats.maxLateCharge, k.prefix.lateCharged - late);
      s.stats.forgivenTotal += k.prefix.forgiven - forgiven;
      changed = true;
    }
  }
  if (changed) {
    rec.walker = undefined;
    markKeyChanged(s, rec);
  }
  if (hasTail(k)) s.tails.add(rec);
  else {
    s.tails.delete(rec);
    scheduleCollect(s, rec);
  }
}

/**
 * Drops keys that answer like a new bucket at the live floor (full, nothing late, empty tail).
 * Each replica does this on its own; nothing is lost because entries are self-describing and
 * this incarnation's running totals live in `counters`, which a drop never resets. Only keys
 * whose scheduled check is due are looked at (key-index.ts); each is re-checked here.
 */
export function collectKeys(s: ReplicaState, raw: number): void {
  const floor = liveFloor(s.reg);
  const t = Math.min(stampAt(s, raw), floor ?? 0);
  for (let rec = popDue(s, t); rec !== undefined; rec = popDue(s, t)) {
    const k = rec.state;
    if (hasTail(k)) continue; // scheduled again once a fold empties it
    if (isFullAt(k, t)) {
      dropRecord(s, rec);
      s.stats.keysCollected += 1;
    } else scheduleCollect(s, rec, t + 1);
  }
}

/** collectKeys' test: a key with an empty tail that answers like a new bucket at `t`. */
export function isFullAt(k: KeyState, t: number): boolean {
  if (isCollectable(k)) return true;
  if (t < k.prefix.tau || k.config.tEff > t) return false;
  return (levelWithoutTail(k, t) ?? keyLevelAt(k, t).level) >= k.config.rate.capacityUnits;
}

/**
 * Whether a tick at the live floor would fold `k` to an empty tail and then collect it (on a
 * copy: `k` is left alone). Only data before the floor is folded, so a key with later entries
 * or with late data is kept.
 */
export function wouldCollect(k: KeyState, floor: number | undefined): boolean {
  if (!hasTail(k)) return isFullAt(k, Math.max(k.prefix.tau, floor ?? k.prefix.tau));
  if (floor === undefined || k.K.size > 0 || k.entries.some((e) => e.slot >= floor)) return false;
  return isFullAt(foldKey(k, floor), floor);
}

/** Forgets a key here (collection or eviction); this incarnation's running total is kept. */
export function dropRecord(s: ReplicaState, rec: KeyRecord): void {
  s.keys.delete(rec.key);
  s.open.delete(rec.key);
  s.incomplete.delete(rec.key);
  s.tails.delete(rec);
  s.touched.delete(rec);
  unlinkKey(s, rec);
  rec.walker = undefined;
  rec.collectAt = undefined;
}

/**
 * An incarnation that learns it was retired (or forgotten) continues at once under a fresh id,
 * keeping its state: its old running totals stay valid data, new consumption starts a new
 * writer. Called on receipt as well as on the timer. The new record starts at the old
 * watermark (it holds no entries yet), so renewing is not a watermark advance.
 */
export function renewIfRetired(s: ReplicaState, raw: number): boolean {
  const me = s.reg.incs.get(s.self);
  if (me !== undefined && me.retired < 0 && !isForgotten(s.self, s.reg.horizon)) return false;
  const t = stampAt(s, raw);
  s.self = makeIncarnationId(Math.max(t, s.reg.horizon, birthOf(s.self) + 1), s.randomHex());
  s.counters = new Map();
  s.open = new Map();
  s.reg.incs.set(s.self, { wm: me?.wm ?? 0, retired: -1, seq: bump(s) });
  s.lastHeard.set(s.self, raw);
  for (const session of s.sessions.values()) resetOut(session, raw);
  s.stats.renewals += 1;
  return true;
}
