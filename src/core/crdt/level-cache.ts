// A per-key cache of the walk, so a decision costs O(1) instead of a replay of the whole tail.
//
// The level is a pure function of (state, t) computed by one walk from the prefix (replay.ts).
// Between changes of the state, a later time only walks further: the cache keeps the walker
// positioned after the entries already replayed and resumes from there. It is exact, not an
// approximation: the same Walker does the same arithmetic in the same order as `levelAt`, and
// a property test (test/crdt/level-cache.test.ts) compares the two on protocol-generated runs.
//
// Valid while the prefix, K, config and the replayed entries are unchanged. The replica drops
// it (`rec.walker = undefined`) on every other change: a join, a fold, a horizon move, a newer
// config. Its own debit is the one change it follows in place: a new entry after the replayed
// ones needs nothing, growth of the last replayed entry is re-charged (Walker.raiseLast), and
// anything else drops it.

import type { Rate } from "../rate.ts";
import { compareEntryPos, type Entry } from "./key-state.ts";
import { levelAt, levelWithoutTail, Walker } from "./replay.ts";
import type { KeyRecord } from "./replica-state.ts";

/** Where `cachedLevel` writes, so the hot path allocates nothing. */
export interface LevelOut {
  level: number;
  rate: Rate;
}

/** `levelAt(rec.state, t)`, resuming the record's cached walk. */
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

/** The reference the cache must agree with (tests). */
export function uncachedLevel(rec: KeyRecord, t: number): { level: number; rate: Rate } {
  return levelAt(rec.state, t);
}
