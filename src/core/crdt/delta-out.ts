// Extraction of what a peer may lack: the delta-interval (from, now] of this replica's change
// sequence, as a plain object. Entries are coalesced per key (one open slot per key per flush),
// each referenced incarnation travels with its registry record, and a key travels with its
// prefix and K, so a peer that receives a watermark also receives the folded data it covers.

import { newSession, nextFrom } from "./peer-session.ts";
import type { ReplicaState } from "./replica-state.ts";
import { type Delta, IncTable, keyToWire, type WireKey, type WireRecord } from "./wire.ts";

/** The next delta for `node`, or undefined when there is nothing it may lack. */
export function deltaFor(s: ReplicaState, node: string, raw: number): Delta | undefined {
  let session = s.sessions.get(node);
  if (session === undefined) {
    session = newSession(raw);
    s.sessions.set(node, session);
  }
  const from = nextFrom(session, raw, s.opts.resendAfterUs);
  if (from >= s.seq) return undefined;
  const table = new IncTable();
  const keys: WireKey[] = [];
  for (const [key, rec] of s.keys) {
    const changed = rec.seq > from || rec.state.entries.some((e) => e.seq > from);
    if (changed) keys.push(keyToWire(key, rec.state, from, table));
  }
  for (const [id, r] of s.reg.incs) if (r.seq > from) table.of(id);
  const records: WireRecord[] = [];
  for (const [ix, id] of table.ids.entries()) {
    const r = s.reg.incs.get(id);
    if (r !== undefined) records.push([ix, r.wm, r.retired]);
  }
  session.sent = s.seq;
  return {
    kind: "delta",
    node: s.opts.node,
    inc: s.self,
    from,
    to: s.seq,
    sentAt: raw,
    horizon: s.reg.horizon,
    incs: table.ids,
    records,
    keys,
  };
}
