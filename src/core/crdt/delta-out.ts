// Extraction of what a peer may lack: the delta-interval (from, now] of this replica's change
// sequence, as a Delta (wire.ts). Entries are coalesced per key (one open slot per key per flush),
// referenced incarnations travel with their registry records, and a key travels with its prefix
// and K, so a peer that receives a watermark also receives the folded data it covers. Nothing
// goes back to the incarnation it came from. What else goes is the peer's lane (forwarding.ts):
// flood (relay on), local (relay off: only changes made here, and then no foreign watermark
// either: it could cover foreign data left out), or the regional lanes of relays per region. The
// keys looked at are those changed after `from` (a change list, key-index.ts), not every key held. A key
// whose header the peer holds already goes as entries alone (header-omission.ts).

import { carries, forgetIncarnations, isRegional, laneOf } from "./forwarding.ts";
import { mayOmitHeader } from "./header-omission.ts";
import { birthOf, type IncId, isForgotten } from "./incarnation.ts";
import { changedSince } from "./key-index.ts";
import type { Entry } from "./key-state.ts";
import { newSession, nextFrom, noteSent, resetOut } from "./peer-session.ts";
import type { ReplicaState } from "./replica-state.ts";
import { type HeldFigure, heldFigures, ownFigure } from "./share.ts";
import { type Delta, type DemandRow, type IncarnationRecord, IncTable, type KeyPartDelta, keyDelta, keyEntries } from "./wire.ts";

/** The next delta for `node`, or undefined when there is nothing it may lack. */
export function deltaFor(s: ReplicaState, node: string, raw: number): Delta | undefined {
  const routing = s.routing;
  const lane = laneOf(routing, node, s.opts.relay);
  // An idle link: its stream stays where it was, and resumes from there if it becomes a relay pair.
  if (lane === "none") return undefined;
  if (routing.horizonSeen !== s.reg.horizon) {
    routing.horizonSeen = s.reg.horizon;
    forgetIncarnations(routing, (id) => !isForgotten(id, s.reg.horizon));
  }
  let session = s.sessions.get(node);
  if (session === undefined) {
    session = newSession(raw);
    s.sessions.set(node, session);
  }
  const from = nextFrom(session, raw, s.opts.resendAfterUs);
  if (from < session.sent) s.stats.resends++;
  if (from >= s.seq) return undefined;
  const peer = session.inInc;
  const self = s.self;
  // Entries and records by the incarnation that wrote them, key metadata by where it came from.
  const send = (seq: number, writer: IncId | undefined, origin: IncId | undefined): boolean =>
    seq > from && carries(routing, self, lane, peer, writer, origin);
  const table = new IncTable();
  const keys: KeyPartDelta[] = [];
  // A figure measured under a previous id (before a renewal) is not stamped within this one's life.
  const born = birthOf(s.self);
  // Only keys changed after `from` can hold anything to send (key-index.ts: change list).
  const include = (e: Entry): boolean => send(e.seq, e.inc, e.origin);
  // Share mode: peers' demand figures joined after `from` go where their writers' entries go.
  const relayFigure = (writer: IncId, f: HeldFigure): boolean =>
    writer !== peer && f.seq > from && carries(routing, self, lane, peer, writer, f.origin);
  for (const rec of changedSince(s, from)) {
    const relayed = relayedFigures(s, rec.key, relayFigure);
    // A header at or below the peer's ack is not due (from >= acked): only entries can be. Share
    // mode's tick marks a demanded key changed, so its figure always rides on a whole part; a
    // relayed figure makes the part whole too (figures ride on whole parts only: validate.ts).
    if (relayed === undefined && mayOmitHeader(session, rec)) {
      if (rec.state.entries.some(include)) keys.push(keyEntries(rec.key, rec.state, include, table));
      continue;
    }
    if (relayed === undefined && !send(rec.seq, undefined, rec.origin) && !rec.state.entries.some(include)) continue;
    const part = keyDelta(rec.key, rec.state, include, table);
    // Share mode: this replica's demand figure rides on its key part (share.ts), with the relayed ones.
    const own = ownFigure(s, rec.key);
    const demand: DemandRow[] = own === undefined || own.at < born ? [] : [[table.of(s.self), own.at, own.rateMilli]];
    if (relayed !== undefined) for (const [id, f] of relayed) demand.push([table.of(id), f.at, f.rateMilli]);
    keys.push(demand.length === 0 ? part : { ...part, demand });
  }
  const records: IncarnationRecord[] = [];
  const listed = new Set<IncId>();
  const addRecord = (id: IncId): void => {
    const r = s.reg.incs.get(id);
    if (r === undefined || listed.has(id)) return;
    listed.add(id);
    records.push([table.of(id), r.wm, r.retired]);
  };
  for (const [id, r] of s.reg.incs) if (send(r.seq, id, r.origin)) addRecord(id);
  // Records of incarnations whose entries go out: flooding, or on a regional lane for a writer
  // the lane carries whole, the interval holds all we hold of them that the peer may lack, so
  // their watermarks are truthful. (Entries made here of other writers carry no record.)
  if (lane === "flood") for (const id of [...table.ids]) addRecord(id);
  else if (isRegional(lane)) {
    for (const id of [...table.ids]) if (carries(routing, self, lane, peer, id, id)) addRecord(id);
    // A retirement the writer rule holds back (one of our region written elsewhere, or one of
    // another region written here) still has to reach everyone: retirements are merged by max,
    // so a region that never saw the later one would keep a different registry forever. It goes
    // by where it came from, like key metadata, with no watermark (0 claims nothing: trap 8).
    for (const [id, r] of s.reg.incs) {
      if (r.retired < 0 || listed.has(id) || !send(r.seq, undefined, r.origin)) continue;
      listed.add(id);
      records.push([table.of(id), 0, r.retired]);
    }
  }
  noteSent(session, s.seq, raw);
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

/** The held figures of `key` that `take` selects, or undefined when none is. */
function relayedFigures(s: ReplicaState, key: string, take: (writer: IncId, f: HeldFigure) => boolean): [IncId, HeldFigure][] | undefined {
  const held = heldFigures(s, key);
  if (held === undefined) return undefined;
  const out: [IncId, HeldFigure][] = [];
  for (const [id, f] of held) if (take(id, f)) out.push([id, f]);
  return out.length === 0 ? undefined : out;
}

/**
 * Restarts every regional stream from scratch: an incarnation changed class (forwarding.ts), so
 * what was held back from a peer may now be owed to it, and earlier intervals did not carry it.
 */
export function restartRegionalStreams(s: ReplicaState, raw: number): void {
  for (const [node, session] of s.sessions) if (isRegional(laneOf(s.routing, node, s.opts.relay))) resetOut(session, raw);
}
