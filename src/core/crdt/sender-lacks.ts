// What a received key part shows its sender lacks, so that it is sent back.
//
// "Never echo to the sender" (a change equal to what the sender sent is attributed to it and not
// sent back) rests on the sender still holding what it sent. Delta-state anti-entropy assumes
// states only grow; collection shrinks them: a replica drops a key that answers like a new
// bucket and, on its next use, starts it again from nothing. A peer that still holds the old key
// (its floor lags) then holds more than the sender, and nothing it holds is due to be sent: what
// came from the sender is attributed to it, what the sender acknowledged is not sent again. At
// quiescence the two keep different states (fuzz seeds 457 and 1668, docs/design.md, "Collection
// shrinks a state"). The part itself says what its sender holds: its limit, prefix and K always,
// and every entry when it is whole. Whatever the join result has beyond that, and the sender
// should hold by now (it came from the sender, or the sender acknowledged it), is marked as a
// local change again.

import type { IncId } from "./incarnation.ts";
import { compareConfig } from "./key-config.ts";
import { touchKey } from "./key-index.ts";
import { comparePrefix, type Entry, type KeyState } from "./key-state.ts";
import { markChanged } from "./local-change.ts";
import { bump, type KeyRecord, type ReplicaState } from "./replica-state.ts";

/** The sending stream: its incarnation, and how far it acknowledged our own sequence. */
export interface PartSender {
  readonly inc: IncId;
  readonly acked: number;
}

/** Whether the sender should hold a change by now: it came from it, or it acknowledged it. */
function owed(seq: number, origin: IncId | undefined, from: PartSender): boolean {
  return origin === from.inc || seq <= from.acked;
}

/** Whether `held` (a join result) has a limit, prefix or K row beyond those of `part`. */
function metaBeyond(held: KeyState, part: KeyState): boolean {
  if (compareConfig(held.config, part.config) > 0) return true;
  if (comparePrefix(held.prefix, part.prefix) > 0) return true;
  for (const [inc, n] of held.K) if (n > (part.K.get(inc) ?? 0)) return true;
  return false;
}

/**
 * After joining `part` (sent by `from`) into `rec`: marks as local changes the key's metadata,
 * if the part's is behind, and, if the part is whole, every entry it lacks or holds lower.
 */
export function markWhatSenderLacks(s: ReplicaState, rec: KeyRecord, part: KeyState, whole: boolean, from: PartSender): void {
  let seq: number | undefined;
  if (owed(rec.seq, rec.origin, from) && metaBeyond(rec.state, part)) {
    seq = bump(s);
    markChanged(rec, seq);
  }
  if (whole) {
    // Both lists are sorted by (slot, inc): one merge finds what the part lacks.
    const theirs = part.entries;
    let j = 0;
    for (const e of rec.state.entries) {
      while (j < theirs.length && before(theirs[j] as Entry, e)) j += 1;
      const t = theirs[j];
      const same = t !== undefined && t.slot === e.slot && t.inc === e.inc && t.c0 >= e.c0 && t.c1 >= e.c1;
      if (same || !owed(e.seq, e.origin, from)) continue;
      seq ??= bump(s);
      markChanged(e, seq);
    }
  }
  if (seq !== undefined) touchKey(s, rec, seq);
}

function before(a: Entry, b: Entry): boolean {
  return a.slot < b.slot || (a.slot === b.slot && a.inc < b.inc);
}
