// Key parts without their header (proto KeyDelta.header_omitted): a key part normally carries
// the key's limit, folded prefix, K and horizon (its header) beside the entries, and the header is
// most of a part's bytes. When the peer already holds the header, the entries alone go.
//
// Sender: a part to peer P may leave the header out when the header last changed at or below
// what P acknowledged (KeyRecord.seq <= acked). P then received, without a gap, some delta that
// covered that change, and every such delta carried the key: whole (the header was not yet
// acknowledged) or, inductively, entries-only after an earlier delta that did. The stream to P
// must have negotiated it (an old peer refuses such parts): `omitHeaders` on the session.
//
// Receiver: acknowledging is not enough, because a replica drops keys (collection, eviction)
// and may start the same key again from nothing, without the header P believes it holds. So
// each key record remembers, one bit per peer, whose whole part it joined since it was made;
// an entries-only part from P joins only into a record with P's bit, and otherwise the key
// goes into the ack's missing keys, and P resends it whole. The part then joins as if it had
// carried the receiver's own header, which the receiver's state already includes.
//
// Bits are per peer node, 31 of them (the first 31 peers this process streams with); parts
// from a peer beyond that are always asked for whole, which is correct, only not compact.

import type { KeyState } from "./key-state.ts";
import type { PeerSession } from "./peer-session.ts";
import type { KeyRecord, ReplicaState } from "./replica-state.ts";

const MAX_BITS = 31;

/** Whether the next part of `rec` to the peer of `session` may leave its header out. */
export function mayOmitHeader(session: PeerSession, rec: KeyRecord): boolean {
  return session.omitHeaders && rec.seq <= session.acked;
}

/** The bit of the peer with `session` in KeyRecord.headersFrom, 0 if all are taken. */
export function headerBit(s: ReplicaState, session: PeerSession): number {
  if (session.headerBit === undefined) {
    let i = 0;
    for (const other of s.sessions.values()) {
      if (other === session) break;
      i += 1;
    }
    session.headerBit = i < MAX_BITS ? 1 << i : 0;
  }
  return session.headerBit;
}

/** Records that `rec` joined a whole part from the peer with bit `bit`. */
export function markHeaderFrom(rec: KeyRecord, bit: number): void {
  rec.headersFrom |= bit;
}

/**
 * The state an entries-only part stands for, on the receiver's own header, or undefined when
 * the receiver does not hold a header from that peer for this key (it asks for the key whole).
 */
export function stateForEntries(rec: KeyRecord | undefined, bit: number, entries: KeyState["entries"]): KeyState | undefined {
  if (rec === undefined || bit === 0 || (rec.headersFrom & bit) === 0) return undefined;
  const k = rec.state;
  // Prefixes are never written in place; K is (a join adds late data), so it is copied.
  return { config: k.config, prefix: k.prefix, K: new Map(k.K), entries, horizon: k.horizon };
}
