// Indexes over the replica's keys that keep timer work and delta extraction proportional to
// what changed, not to the number of keys held:
//
//   change list  every key record in order of its last change sequence (a doubly linked list:
//                a change moves the record to the end). The keys a delta-interval (from, now]
//                must consider are exactly those whose last change is after `from`: walk back
//                from the end until a record's last change is at or below `from`. This serves
//                any `from` (the last send, the last ack on a resend, 0 after a reset) with no
//                log to trim.
//   tails        keys that may have entries or K (fold candidates), and keys touched since the
//                last pass. A pass at an unchanged fold floor looks only at the touched ones:
//                the others were folded to this floor already. A touched key left without a
//                tail is scheduled for collection.
//   collection   a min-heap of (due time, key): for a key with an empty tail, the first stamp at
//                which collectKeys' test holds (the level only refills after the last change,
//                so the test is monotone in time). A change to the key schedules it again when
//                it makes it due earlier; a popped entry is re-checked against the real test.
//
// The records are the replica's own (`s.keys`); an edge that deletes from `s.keys` directly
// leaves stale links, which every walk detects (`s.keys.get(rec.key) !== rec`) and drops.

import { isCollectable } from "./key-fold.ts";
import type { KeyState } from "./key-state.ts";
import { keyLevelAt, levelWithoutTail } from "./replay.ts";
import type { KeyRecord, ReplicaState } from "./replica-state.ts";

/** Records `rec` as changed at sequence `seq` (the current `s.seq`): moves it to the end. */
export function touchKey(s: ReplicaState, rec: KeyRecord, seq: number): void {
  rec.changed = seq;
  if (s.lastChanged === rec) return;
  unlinkKey(s, rec);
  rec.before = s.lastChanged;
  rec.after = undefined;
  if (s.lastChanged !== undefined) s.lastChanged.after = rec;
  else s.firstChanged = rec;
  s.lastChanged = rec;
}

/** Takes `rec` out of the change list (the key is dropped). */
export function unlinkKey(s: ReplicaState, rec: KeyRecord): void {
  const { before, after } = rec;
  if (before === undefined && after === undefined && s.firstChanged !== rec) return;
  if (before !== undefined) before.after = after;
  else s.firstChanged = after;
  if (after !== undefined) after.before = before;
  else s.lastChanged = before;
  rec.before = undefined;
  rec.after = undefined;
}

/** Records of keys changed after `from`, oldest change first. */
export function changedSince(s: ReplicaState, from: number): KeyRecord[] {
  const out: KeyRecord[] = [];
  let rec = s.lastChanged;
  while (rec !== undefined && rec.changed > from) {
    const prev = rec.before;
    if (s.keys.get(rec.key) === rec) out.push(rec);
    else unlinkKey(s, rec);
    rec = prev;
  }
  return out.reverse();
}

export function hasTail(k: KeyState): boolean {
  return k.entries.length > 0 || k.K.size > 0;
}

/**
 * After any change to a key: the next fold pass looks at it, and either keeps it as a fold
 * candidate (it has a tail) or schedules its collection check.
 */
export function afterKeyChange(s: ReplicaState, rec: KeyRecord): void {
  s.touched.add(rec);
}

/**
 * The first stamp at which collectKeys' test holds for this state (tail empty): collectable
 * now, or full at `t >= max(tau, tEff)`. From there the level only refills at the key's rate,
 * so the answer is exact (and re-checked when popped).
 */
export function collectDue(k: KeyState): number {
  if (isCollectable(k)) return 0;
  const p = k.prefix;
  const t0 = Math.max(p.tau, k.config.tEff);
  const rate = k.config.rate;
  // Common after a fold: nothing late, no limit switch, so the level at t0 is the prefix's
  // refilled (what keyLevelAt computes, without a walk).
  const level = levelWithoutTail(k, t0) ?? keyLevelAt(k, t0).level;
  const gap = rate.capacityUnits - level;
  return gap <= 0 ? t0 : t0 + Math.ceil(gap / rate.unitsPerMicro);
}

/** Schedules a collection check of `rec` (tail empty) unless one is already due no later. */
export function scheduleCollect(s: ReplicaState, rec: KeyRecord, notBefore = 0): void {
  const due = Math.max(collectDue(rec.state), notBefore);
  if (rec.collectAt !== undefined && rec.collectAt <= due) return;
  rec.collectAt = due;
  heapPush(s.collect, due, rec);
}

/** A binary min-heap of (due, record) in two parallel arrays (no object per entry). */
export interface DueHeap {
  readonly at: number[];
  readonly recs: KeyRecord[];
}

export function newDueHeap(): DueHeap {
  return { at: [], recs: [] };
}

/** Pops the next entry due at or before `t` that is still current, or undefined. */
export function popDue(s: ReplicaState, t: number): KeyRecord | undefined {
  const h = s.collect;
  while (h.at.length > 0 && (h.at[0] as number) <= t) {
    const at = h.at[0] as number;
    const rec = h.recs[0] as KeyRecord;
    heapPop(h);
    if (rec.collectAt !== at || s.keys.get(rec.key) !== rec) continue; // superseded or dropped
    rec.collectAt = undefined;
    return rec;
  }
  return undefined;
}

function heapPush(h: DueHeap, at: number, rec: KeyRecord): void {
  let i = h.at.length;
  h.at.push(at);
  h.recs.push(rec);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    const pat = h.at[parent] as number;
    if (pat <= at) break;
    h.at[i] = pat;
    h.recs[i] = h.recs[parent] as KeyRecord;
    i = parent;
  }
  h.at[i] = at;
  h.recs[i] = rec;
}

function heapPop(h: DueHeap): void {
  const lastAt = h.at.pop();
  const lastRec = h.recs.pop();
  const n = h.at.length;
  if (lastAt === undefined || lastRec === undefined || n === 0) return;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const r = l + 1;
    const c = r < n && (h.at[r] as number) < (h.at[l] as number) ? r : l;
    const cat = h.at[c] as number;
    if (cat >= lastAt) break;
    h.at[i] = cat;
    h.recs[i] = h.recs[c] as KeyRecord;
    i = c;
  }
  h.at[i] = lastAt;
  h.recs[i] = lastRec;
}
