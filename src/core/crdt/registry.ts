// The incarnation registry: per incarnation a watermark and a retirement record, plus the
// horizon. It is replicated state (a product of max-registers), because what a replica folds
// must be decided by state every replica converges to (trap 9), not by its own timeouts.
//
//   wm[i] = w      invariant: whoever holds it holds every entry of i stamped before w (trap 8)
//   retired[i] = ρ written once i was silent for T_retire; final, merged by max
//   horizon H      every incarnation born before H is gone; records and counts of it are dropped

import { birthOf, type IncId, isForgotten } from "./incarnation.ts";

export interface IncRecord {
  wm: number;
  /** Stamp of the retirement, or -1 while live. */
  retired: number;
  /** Local change sequence, for delta extraction; not part of the lattice. */
  seq: number;
  /** Incarnation whose delta last changed it (undefined: changed here); not part of the lattice. */
  origin?: IncId | undefined;
}

export interface Registry {
  readonly incs: Map<IncId, IncRecord>;
  horizon: number;
}

export function newRegistry(): Registry {
  return { incs: new Map(), horizon: 0 };
}

export interface WireInc {
  readonly id: IncId;
  readonly wm: number;
  readonly retired: number;
}

/**
 * Joins one record; returns the record if it changed (or was added). The caller stamps its
 * change sequence and origin (delta-in.ts, joinRecordPart): they are not part of the lattice.
 */
export function joinRecord(reg: Registry, rec: WireInc): IncRecord | undefined {
  if (isForgotten(rec.id, reg.horizon)) return undefined;
  const cur = reg.incs.get(rec.id);
  if (cur === undefined) {
    const added: IncRecord = { wm: rec.wm, retired: rec.retired, seq: 0 };
    reg.incs.set(rec.id, added);
    return added;
  }
  if (rec.wm > cur.wm || rec.retired > cur.retired) {
    cur.wm = Math.max(cur.wm, rec.wm);
    cur.retired = Math.max(cur.retired, rec.retired);
    return cur;
  }
  return undefined;
}

/** Raises the horizon and forgets what it covers; returns whether it moved. */
export function raiseHorizon(reg: Registry, horizon: number): boolean {
  if (!(horizon > reg.horizon)) return false;
  reg.horizon = horizon;
  for (const id of [...reg.incs.keys()]) if (isForgotten(id, horizon)) reg.incs.delete(id);
  return true;
}

export function isLive(reg: Registry, id: IncId): boolean {
  const r = reg.incs.get(id);
  return r !== undefined && r.retired < 0 && !isForgotten(id, reg.horizon);
}

/**
 * Fold floor: the smallest watermark over live incarnations. Entries of live incarnations before
 * it are all here (wm invariant), so folding up to it is exact. Infinity-free: with no live
 * incarnation the cut does not move.
 */
export function liveFloor(reg: Registry): number | undefined {
  let floor: number | undefined;
  for (const r of reg.incs.values()) if (r.retired < 0 && (floor === undefined || r.wm < floor)) floor = r.wm;
  return floor;
}

/**
 * The horizon moves over the oldest known incarnations, in birth order, as long as each is
 * retired for longer than `forgetUs` (its data can no longer be in flight anywhere); it stops at
 * the first one still of interest and never passes `selfBirth`. It never moves over an
 * incarnation merely because it is unknown here: a fresh replica that knows only itself must
 * not forget peers it has not heard of yet.
 */
export function nextHorizon(reg: Registry, nowStamp: number, forgetUs: number, selfBirth: number): number {
  const byBirth = [...reg.incs.entries()].sort((a, b) => birthOf(a[0]) - birthOf(b[0]));
  let h = reg.horizon;
  for (const [id, r] of byBirth) {
    const gone = r.retired >= 0 && r.retired + forgetUs <= nowStamp;
    if (!gone) break;
    h = Math.max(h, birthOf(id) + 1);
  }
  return Math.min(Math.max(h, reg.horizon), Math.max(selfBirth, reg.horizon));
}

export function registryText(reg: Registry): string {
  const rows = [...reg.incs.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([id, r]) => `${id}:${r.wm}:${r.retired}`);
  return `H=${reg.horizon};${rows.join(",")}`;
}
