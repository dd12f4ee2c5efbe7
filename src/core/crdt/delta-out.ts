// Extraction of what a peer may lack: the delta-interval (from, now] of this replica's change
// sequence, as a Delta (wire.ts). Entries are coalesced per key (one open slot per key per flush),
// referenced incarnations travel with their registry records, and a key travels with its prefix
// and K, so a peer that receives a watermark also receives the folded data it covers. Nothing
// goes back to the incarnation it came from; with `relay` off, only changes made here go out
// (and then no foreign watermark either: it could cover foreign data left out). The keys looked
// at are those changed after `from` (a change list, key-index.ts), not every key held.

import type { IncId } from "./incarnation.ts";
import { changedSince } from "./key-index.ts";
import type { Entry } from "./key-state.ts";
import { newSession, nextFrom } from "./peer-session.ts";
import type { ReplicaState } from "./replica-state.ts";
import { type Delta, type IncarnationRecord, IncTable, type KeyDelta, keyDelta } from "./wire.ts";

/** The next delta for `node`, or undefined when there is nothing it may lack. */
export function deltaFor(s: ReplicaState, node: string, raw: number): Delta | undefined {
  let session = s.sessions.get(node);
  if (session === undefined) {
    session = newSession(raw);
    s.sessions.set(node, session);
  }
  const from = nextFrom(session, raw, s.opts.resendAfterUs);
  if (from >= s.seq) return undefined;
  const peer = session.inInc;
  const relay = s.opts.relay;
  const send = (seq: number, origin: IncId | undefined): boolean => seq > from && (origin === undefined || (relay && origin !== peer));
  const table = new IncTable();
  const keys: KeyDelta[] = [];
  // Only keys changed after `from` can hold anything to send (key-index.ts: change list).
  const include = (e: Entry): boolean => send(e.seq, e.origin);
  for (const rec of changedSince(s, from)) {
    if (send(rec.seq, rec.origin) || rec.state.entries.some(include)) keys.push(keyDelta(rec.key, rec.state, include, table));
  }
  const records: IncarnationRecord[] = [];
  const listed = new Set<IncId>();
  const addRecord = (id: IncId): void => {
    const r = s.reg.incs.get(id);
    if (r === undefined || listed.has(id)) return;
    listed.add(id);
    records.push([table.of(id), r.wm, r.retired]);
  };
  for (const [id, r] of s.reg.incs) if (send(r.seq, r.origin)) addRecord(id);
  // Records of incarnations whose entries go out: with relay on, the interval holds all we hold
  // of them that the peer may lack, so their watermarks are truthful.
  if (relay) for (const id of [...table.ids]) addRecord(id);
  session.sent = s.seq;
  return {
    node: s.opts.node,
    incarnation: s.self,
    fromSeq: from,
    toSeq: s.seq,
    sentAtUs: raw,
    horizonUs: s.reg.horizon,
    incarnations: table.ids,
    records,
    keys,
  };
}
