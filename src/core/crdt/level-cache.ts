// A per-key cache of the walk, so a decision costs O(1) instead of a replay of the whole tail.
//
// The level is a pure function of (state, t) computed by one walk from the prefix (replay.ts).
// Between changes of the state, a later time only walks further: the cache keeps the walker
// positioned after the entries already replayed and resumes from there. It is exact, not an
// approximation: the same Walker does the same arithmetic in the same order as `keyLevelAt`, and
// test/crdt/optimized-paths.test.ts compares the two on protocol-generated runs.
//
// Valid while the prefix, K, config and the replayed entries are unchanged. The replica drops
// it (`rec.walker = undefined`) on every other change: a fold, a horizon move, a newer config,
// a join that changed metadata or touched a replayed entry. A join that only adds or raises
// entries after the replayed ones keeps it. Of its own debits, a new entry after the replayed
// ones needs nothing, growth of the last replayed entry is re-charged (Walker.raiseLast), and
// anything else drops it.

import type { Rate } from "../rate.ts";
import { compareEntryPos, type Entry } from "./key-state.ts";
import { levelWithoutTail, Walker } from "./replay.ts";
import type { KeyRecord } from "./replica-state.ts";

/** Where `cachedLevel` writes, so the hot path allocates nothing. */
export interface LevelOut {
  level: number;
  rate: Rate;
}

/** `keyLevelAt(rec.state, t)`, resuming the record's cached walk. */
export function cachedLevel(rec: KeyRecord, t: number, out: LevelOut): void {
  const k = rec.state;
  const end = Math.max(t, k.prefix.tau);
  let w = rec.walker;
  if (w === undefined) {
    const plain = levelWithoutTail(k, end);
    if (plain !== undefined) {
      out.level = plain;
      out.rate = k.config.rate;
      return;
    }
  }
  if (w === undefined || w.entries !== k.entries || end < w.at) {
    w = new Walker(k);
    rec.walker = w;
  }
  out.level = w.levelAtEnd(end);
  out.rate = w.configAt(end).rate;
}

/** Keeps the cache right after this replica's own entry `e` grew (or was inserted at `index`). */
export function afterOwnDebit(rec: KeyRecord, e: Entry, inserted: number | undefined): void {
  const w = rec.walker;
  if (w === undefined) return;
  const n = w.consumed;
  if (w.entries !== rec.state.entries) rec.walker = undefined;
  else if (inserted !== undefined) {
    // Inserted among the replayed entries: the replay it rests on changed.
    if (inserted < n) rec.walker = undefined;
  } else if (n > 0) {
    const last = w.entries[n - 1] as Entry;
    if (last === e && w.at === e.slot) w.raiseLast(e);
    else if (compareEntryPos(e, last) <= 0) rec.walker = undefined;
  }
}

/** The last entry the cached walk replayed (captured before a join), or undefined. */
export function lastReplayed(rec: KeyRecord): Entry | undefined {
  const w = rec.walker;
  return w === undefined || w.consumed === 0 ? undefined : w.entries[w.consumed - 1];
}

/**
 * Keeps the cache across a join that changed no metadata (prefix, K, config, horizon) and
 * only added or raised entries after `last`, the last one replayed before the join: the replay
 * the cache rests on is then unchanged (entries are inserted in place, so its indices hold).
 */
export function afterJoin(rec: KeyRecord, last: Entry | undefined, meta: boolean, changed: readonly Entry[]): void {
  const w = rec.walker;
  if (w === undefined) return;
  if (meta || w.entries !== rec.state.entries) {
    rec.walker = undefined;
    return;
  }
  if (last === undefined) return;
  for (const e of changed) {
    if (compareEntryPos(e, last) <= 0) {
      rec.walker = undefined;
      return;
    }
  }
}
