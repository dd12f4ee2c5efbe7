// One place that marks replica state as changed here. Key records, entries and incarnation
// records each carry a local change sequence (what delta extraction sends from) and an origin
// (the incarnation whose delta made the change, which is then not echoed back to it). A change
// made here, rather than copied verbatim from a peer, is owed to every peer: no origin.

import type { IncId } from "./incarnation.ts";
import { touchKey } from "./key-index.ts";
import type { IncRecord } from "./registry.ts";
import { bump, type KeyRecord, type ReplicaState } from "./replica-state.ts";

/** What delta extraction tracks: a key record, an entry or an incarnation record. */
interface Tracked {
  seq: number;
  origin?: IncId | undefined;
}

/** Marks `item` changed here at `seq`: sent to every peer from the next delta on. */
export function markChanged(item: Tracked, seq: number): void {
  item.seq = seq;
  item.origin = undefined;
}

/**
 * Marks key `rec` changed here at `seq` (a fresh sequence by default) and moves it to the end
 * of the change list. Returns the sequence, for the entries changed with it.
 */
export function markKeyChanged(s: ReplicaState, rec: KeyRecord, seq: number = bump(s)): number {
  markChanged(rec, seq);
  touchKey(s, rec, seq);
  return seq;
}

/**
 * Writes the retirement of incarnation record `rec` at stamp `at`, as a local change (it is
 * replicated and final: docs/design.md, "The registry: watermarks, retirement, horizon").
 */
export function writeRetirement(s: ReplicaState, rec: IncRecord, at: number): void {
  rec.retired = at;
  markChanged(rec, bump(s));
  s.stats.retirementsWritten += 1;
}
