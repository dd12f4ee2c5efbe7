// What one replica holds: the replicated part (registry and key states) and its local
// bookkeeping (own counters, open slots, peer sessions, clock, held data, counters for metrics).
// Plain data, so the pieces that act on it (replica.ts, delta-out.ts, delta-in.ts) stay small.

import { ClockSync } from "./clock-sync.ts";
import type { Routing } from "./forwarding.ts";
import type { HeartbeatState } from "./heartbeat.ts";
import type { IncId } from "./incarnation.ts";
import type { DueHeap } from "./key-index.ts";
import type { Entry, KeyState } from "./key-state.ts";
import type { PeerSession } from "./peer-session.ts";
import type { Registry, WireInc } from "./registry.ts";
import type { Walker } from "./replay.ts";
import type { ShareState } from "./share.ts";
import { DEFAULT_LIMITS, type KnownLimits, type Limits } from "./validate.ts";

export interface ReplicaOptions {
  /** Stable name of this node on the mesh. */
  readonly node: string;
  /** Nodes it exchanges deltas with (readiness waits for one of them). */
  readonly peers: readonly string[];
  /** Consumption within this many microseconds of a slot's start joins it (0: one slot per stamp). */
  readonly slotWidthUs: number;
  /** Silence after which an incarnation is retired (below the shortest partition to survive). */
  readonly retireAfterUs: number;
  /** Time after a retirement before the horizon may forget the incarnation. */
  readonly forgetAfterUs: number;
  /** Quarantine: data stamped beyond now + skewBound + maxDelay is held, not applied. */
  readonly skewBoundUs: number;
  readonly maxDelayUs: number;
  /** Without ack progress for this long, the next delta restarts from the last ack. */
  readonly resendAfterUs: number;
  /** A new process serves after its first sync, or after this long without one. */
  readonly warmupTimeoutUs: number;
  readonly maxHeldEntries: number;
  readonly maxNewKeysPerDelta: number;
  /**
   * Relay what peers sent to other peers. Needed when the mesh is not complete (data must travel
   * through relays); in a full mesh, off saves a factor n of traffic. Nothing is ever echoed back
   * to the incarnation it came from. This is the default lane of a peer ("flood" or "local");
   * `Replica.setLane` overrides it per peer (forwarding.ts: relays per region).
   */
  readonly relay: boolean;
  /** Correct the stamping clock from peers (trap 3). */
  readonly clockSync: boolean;
  /** Longest gap between an idle replica's watermark raises (heartbeat.ts; capped at retireAfter / 5). */
  readonly maxIdleHeartbeatUs: number;
  readonly limits: Limits;
  /**
   * Admission of keys in demand on several replicas (share.ts): "share" admits from this
   * replica's share of the bucket, "local" from the whole bucket. Per policy: `ShareState`'s prefixes.
   */
  readonly contention: "share" | "local";
  /** Share mode: how long a run of demand after idleness admits from 1/n_live before it may take the whole bucket. */
  readonly shareProbeUs: number;
  /** Share mode: a peer's demand figure this much older than its watermark means it stopped demanding. */
  readonly shareStaleUs: number;
  /** Share mode: keys and figures not heard of for this long are forgotten. */
  readonly shareMemoryUs: number;
  /** Share mode: time constant of the decayed demand rate. */
  readonly demandTauUs: number;
}

export const DEFAULT_OPTIONS: Omit<ReplicaOptions, "node" | "peers"> = {
  slotWidthUs: 5_000,
  retireAfterUs: 5_000_000,
  forgetAfterUs: 60_000_000,
  skewBoundUs: 250_000,
  maxDelayUs: 1_000_000,
  resendAfterUs: 500_000,
  warmupTimeoutUs: 2_000_000,
  maxHeldEntries: 100_000,
  maxNewKeysPerDelta: 10_000,
  relay: true,
  clockSync: true,
  maxIdleHeartbeatUs: 1_000_000,
  limits: DEFAULT_LIMITS,
  contention: "local",
  shareProbeUs: 250_000,
  shareStaleUs: 500_000,
  shareMemoryUs: 5_000_000,
  demandTauUs: 500_000,
};

export interface KeyRecord {
  readonly key: string;
  state: KeyState;
  /** Local sequence of the last change to config, prefix, K or horizon. */
  seq: number;
  /** Incarnation whose delta made that change (undefined: made here). */
  origin?: IncId | undefined;
  /** Cached walk of `state` (level-cache.ts); undefined after any change it cannot follow. */
  walker: Walker | undefined;
  /** Largest sequence of a change to the key or its entries, and its neighbours in that order (key-index.ts). */
  changed: number;
  before: KeyRecord | undefined;
  after: KeyRecord | undefined;
  /** Due time of this key's pending collection check, if one is queued. */
  collectAt: number | undefined;
  /** Peers (one bit each, header-omission.ts) whose whole part for this key this record joined. */
  headersFrom: number;
}

/** A record for `key`, not yet in the change list (touchKey puts it there). */
export function newKeyRecord(key: string, state: KeyState, seq: number): KeyRecord {
  return {
    key,
    state,
    seq,
    origin: undefined,
    walker: undefined,
    changed: 0,
    before: undefined,
    after: undefined,
    collectAt: undefined,
    headersFrom: 0,
  };
}

export interface HeldKey {
  readonly key: string;
  readonly state: KeyState;
  /** Applied once the stamping clock plus the quarantine window reaches this. */
  readonly releaseAt: number;
}

export interface HeldRecord {
  readonly rec: WireInc;
  readonly releaseAt: number;
}

export interface ReplicaStats {
  deltasIn: number;
  deltasRejected: number;
  deltasUntrusted: number;
  quarantinedEntries: number;
  heldNow: number;
  renewals: number;
  retirementsWritten: number;
  keysCollected: number;
  folds: number;
  /** Largest late charge one fold applied (tokens): the cap keeps it at or below C. */
  maxLateCharge: number;
  /** Late data the cap forgave, summed over this replica's folds (tokens). */
  forgivenTotal: number;
  /** Peers' key parts skipped, not joined, because their key is ignored here (ignored-keys.ts). */
  keysIgnored: number;
  /** Deltas that went back to a peer's last ack because its acks stalled or it reported a gap (peer-session.ts). */
  resends: number;
}

export interface ReplicaState {
  readonly opts: ReplicaOptions;
  readonly reg: Registry;
  readonly keys: Map<string, KeyRecord>;
  self: IncId;
  /** This incarnation's running total per key; never reset while it lives (even if a key is dropped). */
  counters: Map<string, number>;
  /** This incarnation's open entry per key, closed at each watermark advance. */
  open: Map<string, Entry>;
  seq: number;
  /**
   * The sequence of the latest change other than a watermark rise (bumpWatermark): a snapshot
   * increment after it would hold watermarks only, which a snapshot may skip.
   */
  keptSeq: number;
  readonly sessions: Map<string, PeerSession>;
  /** What goes to which peer (forwarding.ts): lanes set by the edge, and who wrote what. */
  readonly routing: Routing;
  /** Raw local time an incarnation's watermark last rose (silence detection). */
  readonly lastHeard: Map<IncId, number>;
  readonly clock: ClockSync;
  lastStamp: number;
  startedAt: number;
  ready: boolean;
  heldKeys: HeldKey[];
  /** Keys first learned from a partial part, per node that still owes us its whole tail. */
  readonly incomplete: Map<string, Set<string>>;
  heldRecords: HeldRecord[];
  /** Keys under these prefixes are not held, and peers' parts for them are skipped (ignored-keys.ts). */
  ignoredPrefixes: readonly string[];
  /** Key records in order of last change (key-index.ts). */
  firstChanged: KeyRecord | undefined;
  lastChanged: KeyRecord | undefined;
  /** Keys that may have a tail as of the last fold pass, and keys changed since (key-index.ts). */
  readonly tails: Set<KeyRecord>;
  readonly touched: Set<KeyRecord>;
  /** Floor and horizon of the last fold pass. */
  foldFloor: number | undefined;
  foldHorizon: number;
  /** Collection checks by due stamp (a binary heap). */
  readonly collect: DueHeap;
  /** When this replica last raised its own watermark, and its idle back-off (heartbeat.ts). */
  readonly heartbeat: HeartbeatState;
  readonly stats: ReplicaStats;
  readonly randomHex: () => string;
  /** Share mode's local bookkeeping (share.ts): demand figures and shares per key; not replicated state. */
  readonly share: ShareState;
  /** Limits peers' deltas named lately, parsed once (validate.ts): a cache, not state. */
  readonly knownLimits: KnownLimits;
}

export function newStats(): ReplicaStats {
  return {
    deltasIn: 0,
    deltasRejected: 0,
    deltasUntrusted: 0,
    quarantinedEntries: 0,
    heldNow: 0,
    renewals: 0,
    retirementsWritten: 0,
    keysCollected: 0,
    folds: 0,
    maxLateCharge: 0,
    forgivenTotal: 0,
    keysIgnored: 0,
    resends: 0,
  };
}

export function newClock(): ClockSync {
  return new ClockSync();
}

/** The stamping clock: raw clock plus the peer-attested correction, never going back. */
export function stampAt(s: ReplicaState, raw: number): number {
  const corrected = s.opts.clockSync ? raw + s.clock.correction() : raw;
  // Before the first sync the correction is unknown: read the clock but do not latch it, or a
  // replica an hour fast would be stuck an hour ahead by monotonicity.
  if (!s.ready) return Math.max(s.lastStamp, corrected);
  s.lastStamp = Math.max(s.lastStamp, corrected);
  return s.lastStamp;
}

export function bump(s: ReplicaState): number {
  s.seq += 1;
  s.keptSeq = s.seq;
  return s.seq;
}

/**
 * A change that only raises a watermark (this replica's heartbeat, or a peer's record whose
 * retirement did not move): peers get it like any change, but a snapshot may leave it out. An
 * idle mesh raises watermarks and nothing else, and writing a snapshot file for each of them
 * cost an idle replica about a third of a percent of a core. On disk a watermark is only ever
 * stale, which is below the true state (joined under what peers send), and the snapshot's writer
 * is retired when it is loaded anyway.
 */
export function bumpWatermark(s: ReplicaState): number {
  s.seq += 1;
  return s.seq;
}
