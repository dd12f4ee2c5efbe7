// The straightforward versions of what the replica now does incrementally, kept as references
// for the property tests: a full walk for every level, a scan of every key and entry for a
// delta-interval, and a scan of every key for what a tick must fold and collect.

import {
  cloneKeyState,
  type Delta,
  type IncId,
  type KeyConfig,
  type KeyState,
  keyLevelAt,
  liveFloor,
  type Replica,
} from "../../src/core/crdt/index.ts";
import { isCollectable } from "../../src/core/crdt/key-fold.ts";
import { stateOf } from "../support/replica-state.ts";

/** Level of `key` at the replica's stamp for `raw`, by a full walk of a copy of its state. */
export function referenceLevel(r: Replica, key: string, config: KeyConfig, raw: number): number {
  const k = r.keyState(key);
  if (k === undefined) return config.rate.capacityUnits;
  return keyLevelAt(cloneKeyState(k as KeyState), r.stamp(raw)).level;
}

/**
 * What deltaFor(peer) sent for the interval (d.from, d.to], computed by scanning every key and
 * entry as the first version did: key -> "slot@inc:c0-c1" of each entry chosen.
 */
export function referenceDeltaKeys(r: Replica, peer: string, d: Delta): Map<string, string[]> {
  const s = stateOf(r);
  const peerInc = s.sessions.get(peer)?.inInc;
  const send = (seq: number, origin: IncId | undefined): boolean =>
    seq > d.fromSeq && (origin === undefined || (s.opts.relay && origin !== peerInc));
  const out = new Map<string, string[]>();
  for (const [key, rec] of s.keys) {
    const chosen = rec.state.entries.filter((e) => send(e.seq, e.origin));
    if (send(rec.seq, rec.origin) || chosen.length > 0)
      out.set(
        key,
        chosen.map((e) => `${e.slot}@${e.inc}:${e.c0}-${e.c1}`),
      );
  }
  return out;
}

/** The same shape from a delta as sent. */
export function sentDeltaKeys(d: Delta): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const k of d.keys)
    out.set(
      k.key,
      k.entries.map(([i, slot, c0, c1]) => `${slot}@${d.incarnations[i]}:${c0}-${c1}`),
    );
  return out;
}

/**
 * After a tick at `raw`, what a full scan would still find to do: keys with a tail the live
 * floor has passed (fold), keys behind the horizon, and keys the collection test drops.
 */
export function leftoverTickWork(r: Replica, raw: number): string[] {
  const s = stateOf(r);
  const floor = liveFloor(s.reg);
  const t = Math.min(r.stamp(raw), floor ?? 0);
  const found: string[] = [];
  for (const [key, rec] of s.keys) {
    const k = rec.state;
    const tail = k.entries.length > 0 || k.K.size > 0;
    if (k.horizon < s.reg.horizon) found.push(`${key}: behind the horizon`);
    const foldable = k.K.size > 0 || k.entries.some((e) => floor !== undefined && e.slot < floor);
    if (foldable && floor !== undefined && floor > k.prefix.tau) found.push(`${key}: tail not folded to ${floor}`);
    // The collection test as first written (timers.ts isFullAt has a fast path).
    const full = isCollectable(k) || (t >= k.prefix.tau && keyLevelAt(k, t).level >= k.config.rate.capacityUnits && k.config.tEff <= t);
    if (!tail && full) found.push(`${key}: collectable at ${t}`);
  }
  return found;
}

/**
 * The change list's invariant: every key held is in it, in order of last change, and no change
 * to a key or its entries is newer than its place in the list (else a delta could miss it).
 */
export function changeListProblems(r: Replica): string[] {
  const s = stateOf(r);
  const found: string[] = [];
  const listed = new Set<string>();
  let last = 0;
  for (let rec = s.firstChanged; rec !== undefined; rec = rec.after) {
    if (rec.changed < last) found.push(`${rec.key}: out of order`);
    last = rec.changed;
    if (s.keys.get(rec.key) === rec) listed.add(rec.key);
  }
  for (const [key, rec] of s.keys) {
    if (!listed.has(key)) found.push(`${key}: not in the change list`);
    const newest = Math.max(rec.seq, ...rec.state.entries.map((e) => e.seq));
    if (newest > rec.changed) found.push(`${key}: changed at ${newest}, listed at ${rec.changed}`);
  }
  return found;
}
