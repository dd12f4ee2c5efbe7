// What a transport carries between replicas, in three forms, one per trust level:
//
//   Delta           trusted: what `deltaFor` makes and what the join takes (after validation)
//   bytes           the Peer protocol's Delta message (src/mesh/delta-wire.ts writes and reads it)
//   UntrustedDelta  what a decoder read from a peer: well-typed, nothing checked
//
// `validateDelta` (validate.ts) is the only way from UntrustedDelta to Delta. Field names are
// the proto's (proto/tokenmesh/v1/peer.proto, in protobuf-es's camelCase), so one thing has one
// name in the core, on the wire and in the docs.
//
// Incarnation ids are interned per message (rows name an index into `incarnations`), entries
// are coalesced per key per flush, and every message is a delta-interval (fromSeq, toSeq] of
// the sender's change sequence (Almeida, Shoker, Baquero, JPDC 2018, Algorithm 2): a receiver
// that holds (.., fromSeq] and gets (fromSeq, toSeq] holds (.., toSeq], which is what lets it
// trust the watermarks inside (trap 8).

import type { IncId } from "./incarnation.ts";
import type { KeyConfig } from "./key-config.ts";
import type { Entry, KeyState } from "./key-state.ts";

/** [incarnation index, slot (absolute, µs), running total before, running total after] */
export type EntryRow = readonly [number, number, number, number];
/** [incarnation index, running total] */
export type CountRow = readonly [number, number];
/** [incarnation index, stamp (µs), demanded milli-tokens per second]: share mode's demand figure. */
export type DemandRow = readonly [number, number, number];
/** [incarnation index, watermarkUs, retiredUs (-1 while live)] */
export type IncarnationRecord = readonly [number, number, number];

/** proto Prefix: the folded past of a key. */
export interface DeltaPrefix {
  readonly tauUs: number;
  /** Level at tauUs in the limit's exact units; negative while in debt. */
  readonly level: number;
  readonly limit: KeyConfig;
  readonly folded: readonly CountRow[];
  readonly foldedSum: number;
  readonly digest: number;
  readonly lateCharged: number;
  readonly forgiven: number;
}

/** proto KeyDelta: one key's part of a delta. */
export interface KeyDelta {
  readonly key: string;
  readonly limit: KeyConfig;
  readonly prefix: DeltaPrefix;
  /** Running totals known below tauUs, only where they exceed `folded`. */
  readonly known: readonly CountRow[];
  /** Sorted by (slot, incarnation id), no (slot, incarnation) twice. */
  readonly entries: readonly EntryRow[];
  readonly horizonUs: number;
  /** Some tail entries were left out (the peer acknowledged them): a receiver without the key asks again. */
  readonly partial: boolean;
  /** Share mode: writers' demand figures for this key (soft state, not joined into the key: share.ts). */
  readonly demand?: readonly DemandRow[];
  readonly headerOmitted?: false;
}

/**
 * proto KeyDelta with header_omitted set: the entries alone, because the peer acknowledged a
 * delta that carried this key's header (limit, prefix, known, horizon) and the header has not
 * changed since (header-omission.ts). A receiver that does not hold that header asks again.
 */
export interface KeyEntriesDelta {
  readonly key: string;
  readonly headerOmitted: true;
  /** Share mode's figures ride on whole parts only (validate.ts refuses them here). */
  readonly demand?: undefined;
  readonly entries: readonly EntryRow[];
  readonly partial: boolean;
}

/** One key's part of a delta: whole header and entries, or entries alone. */
export type KeyPartDelta = KeyDelta | KeyEntriesDelta;

export interface Delta {
  /** Stable name of the sending node (the transport authenticates it; not in the bytes). */
  readonly node: string;
  /** Sending incarnation; a new one means the sender restarted or renewed. */
  readonly incarnation: IncId;
  /** The interval (fromSeq, toSeq] of the sender's change sequence this delta covers. */
  readonly fromSeq: number;
  readonly toSeq: number;
  /** Sender's raw clock when sent, for clock offset estimation. */
  readonly sentAtUs: number;
  readonly horizonUs: number;
  readonly incarnations: readonly IncId[];
  readonly records: readonly IncarnationRecord[];
  readonly keys: readonly KeyPartDelta[];
}

/** proto Limit, as read: plain numbers, not yet a valid limit. */
export interface Limit {
  readonly version: number;
  readonly effectiveUs: number;
  readonly capacity: number;
  readonly refillTokens: number;
  readonly refillPeriodUs: number;
}

export interface UntrustedPrefix {
  tauUs: number;
  level: number;
  limit: Limit | undefined;
  folded: number[][];
  foldedSum: number;
  digest: number;
  lateCharged: number;
  forgiven: number;
}

export interface UntrustedKeyDelta {
  key: string;
  limit: Limit | undefined;
  prefix: UntrustedPrefix | undefined;
  known: number[][];
  entries: number[][];
  horizonUs: number;
  partial: boolean;
  demand?: number[][];
  /** header_omitted: limit and prefix absent, known empty, horizonUs 0. Absent means false. */
  headerOmitted?: boolean;
}

/**
 * A delta as a decoder read it: the shape of Delta with every value unchecked (rows of any
 * length, indices out of range, counts past any bound, absent messages). `node` is filled in
 * by the transport from the authenticated stream.
 */
export interface UntrustedDelta {
  node: string;
  incarnation: string;
  fromSeq: number;
  toSeq: number;
  sentAtUs: number;
  horizonUs: number;
  incarnations: string[];
  records: number[][];
  keys: UntrustedKeyDelta[];
}

export interface Ack {
  readonly kind: "ack";
  readonly node: string;
  readonly inc: IncId;
  /** The incarnation whose stream is acknowledged. */
  readonly peerInc: IncId;
  /** Everything of the peer's sequence up to here has been received without a gap. */
  readonly upTo: number;
  /** NTP-style timestamps: the delta's sentAtUs, and the receiver's raw clock when it arrived. */
  readonly t1: number;
  readonly t2: number;
  /** The acknowledged delta did not follow on from `upTo`: resend from there without waiting. */
  readonly gap?: boolean;
  /** Keys that arrived partial while unknown here: the sender resends them whole. */
  readonly missing: readonly string[];
}

/** Interning table for one outgoing message. */
export class IncTable {
  readonly ids: IncId[] = [];
  private readonly index = new Map<IncId, number>();
  of(id: IncId): number {
    let i = this.index.get(id);
    if (i === undefined) {
      i = this.ids.length;
      this.ids.push(id);
      this.index.set(id, i);
    }
    return i;
  }
}

// Shared by every message that uses them, so frozen: a consumer that wrote into one would
// otherwise change later messages.
const NO_ROWS: readonly CountRow[] = Object.freeze([]);

function counts(m: ReadonlyMap<IncId, number>, t: IncTable): readonly CountRow[] {
  if (m.size === 0) return NO_ROWS;
  const rows: CountRow[] = [];
  for (const [id, n] of m) rows.push([t.of(id), n]);
  return rows;
}

/** A key's part without its header (the peer holds it), with the entries `include` selects. */
export function keyEntries(key: string, k: KeyState, include: (e: Entry) => boolean, t: IncTable): KeyEntriesDelta {
  const entries: EntryRow[] = [];
  for (const e of k.entries) if (include(e)) entries.push([t.of(e.inc), e.slot, e.c0, e.c1]);
  return { key, headerOmitted: true, entries, partial: entries.length < k.entries.length };
}

/** A key's part with the entries `include` selects (those the peer may lack). */
export function keyDelta(key: string, k: KeyState, include: (e: Entry) => boolean, t: IncTable): KeyDelta {
  const p = k.prefix;
  // Ids are interned in the order folded, known, entries (the indices are part of the message).
  const folded = counts(p.F, t);
  const known = counts(k.K, t);
  const entries: EntryRow[] = [];
  for (const e of k.entries) if (include(e)) entries.push([t.of(e.inc), e.slot, e.c0, e.c1]);
  return {
    key,
    limit: k.config,
    prefix: {
      tauUs: p.tau,
      level: p.level,
      limit: p.config,
      folded,
      foldedSum: p.sumF,
      digest: p.digest,
      lateCharged: p.lateCharged,
      forgiven: p.forgiven,
    },
    known,
    entries,
    horizonUs: k.horizon,
    partial: entries.length < k.entries.length,
  };
}
