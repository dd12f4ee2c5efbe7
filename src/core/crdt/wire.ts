// Deltas and acks as plain objects: what a transport carries between replicas. Incarnation ids
// are interned per message (entries name an index into `incs`), entries are coalesced per key
// per flush, and every message is a delta-interval (from, to] of the sender's change sequence
// (Almeida, Shoker, Baquero, JPDC 2018, Algorithm 2): a receiver that holds (.., from] and gets
// (from, to] holds (.., to], which is what lets it trust the watermarks inside (trap 8).

import type { IncId } from "./incarnation.ts";
import { type KeyConfig, toWireConfig, type WireConfig } from "./key-config.ts";
import type { Entry, KeyState } from "./key-state.ts";

/** [incarnation index, slot, c0, c1] */
export type WireEntry = readonly [number, number, number, number];
/** [incarnation index, running total] */
export type WireCount = readonly [number, number];
/** [incarnation index, watermark, retired (-1 while live)] */
export type WireRecord = readonly [number, number, number];

export interface WirePrefix {
  readonly tau: number;
  readonly level: number;
  readonly config: WireConfig;
  readonly F: readonly WireCount[];
  readonly sumF: number;
  readonly digest: number;
  readonly lateCharged: number;
  readonly forgiven: number;
}

export interface WireKey {
  readonly key: string;
  readonly config: WireConfig;
  readonly prefix: WirePrefix;
  readonly K: readonly WireCount[];
  readonly entries: readonly WireEntry[];
  readonly horizon: number;
  /** Some tail entries were left out (the peer acknowledged them): a receiver without the key asks again. */
  readonly partial: boolean;
}

export interface Delta {
  readonly kind: "delta";
  /** Stable name of the sending node (the transport authenticates it). */
  readonly node: string;
  /** Sending incarnation; a new one means the sender restarted or renewed. */
  readonly inc: IncId;
  /** The interval (from, to] of the sender's change sequence this delta covers. */
  readonly from: number;
  readonly to: number;
  /** Sender's raw clock when sent, for clock offset estimation. */
  readonly sentAt: number;
  readonly horizon: number;
  readonly incs: readonly IncId[];
  readonly records: readonly WireRecord[];
  readonly keys: readonly WireKey[];
}

export interface Ack {
  readonly kind: "ack";
  readonly node: string;
  readonly inc: IncId;
  /** The incarnation whose stream is acknowledged. */
  readonly peerInc: IncId;
  /** Everything of the peer's sequence up to here has been received without a gap. */
  readonly upTo: number;
  /** NTP-style timestamps: the delta's sentAt, and the receiver's raw clock when it arrived. */
  readonly t1: number;
  readonly t2: number;
  /** The acknowledged delta did not follow on from `upTo`: resend from there without waiting. */
  readonly gap?: boolean;
  /** Keys that arrived partial while unknown here: the sender resends them whole. */
  readonly missing: readonly string[];
}

export type Message = Delta | Ack;

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
const NO_ROWS: readonly WireCount[] = Object.freeze([]);

function counts(m: ReadonlyMap<IncId, number>, t: IncTable): readonly WireCount[] {
  if (m.size === 0) return NO_ROWS;
  const rows: WireCount[] = [];
  for (const [id, n] of m) rows.push([t.of(id), n]);
  return rows;
}

/** Wire form of each limit, built once (limits are immutable and shared by many keys). */
const wireConfigs = new WeakMap<KeyConfig, WireConfig>();

function wireConfig(c: KeyConfig): WireConfig {
  let w = wireConfigs.get(c);
  if (w === undefined) {
    w = Object.freeze(toWireConfig(c));
    wireConfigs.set(c, w);
  }
  return w;
}

/** Encodes a key with the entries `include` selects (those the peer may lack). */
export function keyToWire(key: string, k: KeyState, include: (e: Entry) => boolean, t: IncTable): WireKey {
  const p = k.prefix;
  // Ids are interned in the order F, K, entries (the indices are part of the message).
  const F = counts(p.F, t);
  const K = counts(k.K, t);
  const entries: WireEntry[] = [];
  for (const e of k.entries) if (include(e)) entries.push([t.of(e.inc), e.slot, e.c0, e.c1]);
  return {
    key,
    config: wireConfig(k.config),
    prefix: {
      tau: p.tau,
      level: p.level,
      config: wireConfig(p.config),
      F,
      sumF: p.sumF,
      digest: p.digest,
      lateCharged: p.lateCharged,
      forgiven: p.forgiven,
    },
    K,
    entries,
    horizon: k.horizon,
    partial: entries.length < k.entries.length,
  };
}
