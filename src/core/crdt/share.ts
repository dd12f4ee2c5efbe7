// Share mode for contended keys (docs/design.md, section 9, "Modes"): when a key is in demand on
// more than one replica, each admits from its own share of the bucket instead of the whole of
// it, so n replicas that burst together admit about one bucket, not n(C + r·d) (trap 12).
//
// Shares are an input of this replica's admission only. Nothing here is joined into a key's
// replicated state: the level (replay.ts) and the lattice (key-join.ts) are exactly those of the
// local mode, so the laws, convergence and the bounds of section 3 are untouched. What travels is
// one demand figure per writer per key (`KeyDelta.demand`): (stamp, demanded tokens per second),
// last-writer-wins by stamp. It is soft state: a lost or stale figure makes a share less
// accurate, never the level wrong, and the replicated level still bounds every admission.
//
// Per key, a replica is in one of three phases:
//   whole  no peer is current (below): the whole bucket, as in local mode;
//   probe  its demand just began after idleness and it cannot yet know whether peers began at
//          the same moment: it admits from 1/n_live of the bucket (n_live: live incarnations in
//          the registry, a replicated fact every replica has before any burst) for `shareProbeUs`;
//   share  k peers are current: capacity C/(k+1), refill r times this replica's fraction of the
//          demand (refillFraction: proportional, or max-min fair when demand exceeds r; 10% of
//          headroom once the run is established). While the run is young, live peers not heard
//          from since it began count as demanders too (unheardSince).
// A peer's figure is current while the peer is live and the figure is no more than
// `shareStaleUs` older than the peer's watermark: a peer still heard from whose figure stopped
// moving stopped demanding; a peer not heard from at all keeps its share until it is retired
// (`retireAfter`): availability first, as for everything else a silent peer holds.

import type { Rate } from "../rate.ts";
import type { IncId } from "./incarnation.ts";
import { markKeyChanged } from "./local-change.ts";
import type { ReplicaState } from "./replica-state.ts";

/** A writer's demand figure for one key: stamp it was measured at, demanded milli-tokens per second. */
export interface DemandFigure {
  at: number;
  rateMilli: number;
}

/**
 * A peer's figure as held here, with what relaying it needs (the same rule as the writer's
 * entries, forwarding.ts): the incarnation whose delta brought it, and the local change sequence
 * it was joined at (delta extraction sends figures joined after a peer's `from`; 0: never relayed).
 */
export interface HeldFigure extends DemandFigure {
  readonly origin: IncId;
  seq: number;
}

export type SharePhase = "whole" | "probe" | "share";

/** One key's share bookkeeping on this replica (local; only `own` is sent). */
export interface ShareKey {
  readonly key: string;
  /** Tokens demanded (admitted or denied) since the last tick. */
  pending: number;
  /** Exponentially decayed sum of demanded tokens (time constant demandTauUs). */
  decayed: number;
  /** Stamp the current run of demand began (reset after `shareStaleUs` without demand). */
  since: number;
  lastDemandAt: number;
  lastTickAt: number;
  /** Demand probe wanted for this run: the key was idle here, or peers have demanded it recently. */
  probe: boolean;
  /** This replica's published figure, undefined until its first tick with demand. */
  own: DemandFigure | undefined;
  readonly peers: Map<IncId, HeldFigure>;
  phase: SharePhase;
  /** Fractions of capacity and of refill this replica admits from (1 and 1 when whole). */
  capShare: number;
  refillShare: number;
  /** Share level in the units of `rate`, at stamp `levelAt` (a float: it is local, not replicated). */
  level: number;
  levelAt: number;
  rate: Rate | undefined;
}

export interface ShareState {
  readonly keys: Map<string, ShareKey>;
  /** Keys with demand since the last tick. */
  readonly dirty: Set<ShareKey>;
  /**
   * Keys under these prefixes run in the mode opposite to the replica's `contention` option (a
   * policy that differs from the default). Only the exceptions are listed: this is read per decision.
   */
  otherModePrefixes: readonly string[];
  /** Where the incremental sweep of `keys` stands (a few keys per tick, never all at once). */
  sweep: Iterator<[string, ShareKey]> | undefined;
}

export function newShareState(): ShareState {
  return { keys: new Map(), dirty: new Set(), otherModePrefixes: [], sweep: undefined };
}

/** Whether `key` runs in share mode: the replica's default, unless its prefix is an exception. */
export function isSharedKey(s: ReplicaState, key: string): boolean {
  const byDefault = s.opts.contention === "share";
  for (const p of s.share.otherModePrefixes) if (key.startsWith(p)) return !byDefault;
  return byDefault;
}

function newShareKey(key: string, t: number): ShareKey {
  return {
    key,
    pending: 0,
    decayed: 0,
    since: t,
    lastDemandAt: t,
    lastTickAt: t,
    probe: true,
    own: undefined,
    peers: new Map(),
    phase: "whole",
    capShare: 1,
    refillShare: 1,
    level: 0,
    levelAt: t,
    rate: undefined,
  };
}

/** Demanded tokens per microsecond of this replica for `sk` at stamp `t` (bias-corrected for a young run). */
function ownRatePerUs(s: ReplicaState, sk: ShareKey, t: number): number {
  const tau = Math.max(1, s.opts.demandTauUs);
  const age = Math.max(t - sk.since, s.opts.slotWidthUs, 1);
  const norm = tau * (1 - Math.exp(-age / tau));
  return norm > 0 ? sk.decayed / norm : 0;
}

function isCurrent(s: ReplicaState, id: IncId, f: DemandFigure, t: number): boolean {
  const r = s.reg.incs.get(id);
  if (r !== undefined && r.retired >= 0) return false;
  const heard = r === undefined ? t : Math.max(r.wm, f.at);
  return f.at >= heard - s.opts.shareStaleUs;
}

function liveCount(s: ReplicaState): number {
  let n = 0;
  for (const r of s.reg.incs.values()) if (r.retired < 0) n += 1;
  return Math.max(1, n);
}

/** Brings the share level to stamp `t` at the current share (a no-op when whole). */
function refill(sk: ShareKey, t: number): void {
  const rate = sk.rate;
  if (rate === undefined || t <= sk.levelAt) return;
  const cap = capUnits(sk, rate);
  if (sk.level < cap) sk.level = Math.min(cap, sk.level + (t - sk.levelAt) * rate.unitsPerMicro * sk.refillShare);
  sk.levelAt = t;
}

/**
 * Share capacity in units, rounded up to whole tokens (at least one): n shares of C then hold at
 * least C between them (5 tokens over 3 replicas: 2 each, not 1.67, which admits only 1 each).
 */
function capUnits(sk: ShareKey, rate: Rate): number {
  const tokens = Math.max(1, Math.ceil(sk.capShare * rate.capacity - 1e-9));
  return Math.min(rate.capacityUnits, tokens * rate.unitsPerToken);
}

/**
 * Extra refill a share gets once its run of demand is older than `shareProbeUs`. Shares that sum
 * to exactly r put two limiters of the same rate in series, this replica's share and the
 * replicated level: noise in either (jitter, loss, the debt a peer's late entries bring) leaves
 * one of them full while the other denies, and that refill is lost. Measured on the quiet
 * replica beside a saturated one at d = 100 ms, 30 ms jitter, 5% loss (30 s, seed 1): 1.3% of
 * r·T lost with exact shares, 0.7% with this headroom, as in local mode. The level still bounds
 * the total on every decision; a young run (n replicas bursting after idleness) gets exact shares.
 */
const SHARE_HEADROOM = 0.1;

/**
 * This replica's fraction of the refill, from its demand `own` and the current peers' `peers`
 * (milli-tokens per second) against the policy's rate `rateMilli`. While demand fits the rate,
 * in proportion to demand. When it does not, max-min fair (water-filling): a replica that asks
 * less than an even split of what is left gets what it asks, and the rest share the remainder
 * in proportion to their demand. Proportion alone would give a quiet replica beside a saturated
 * one (trap 2: 10/s beside 2,000/s) 10/2,010 of r, half of what it asks, and deny the rest.
 */
export function refillFraction(own: number, peers: readonly number[], rateMilli: number | undefined): number {
  let total = own;
  for (const d of peers) total += d;
  if (total <= 0) return 1 / (peers.length + 1);
  if (rateMilli === undefined || !(rateMilli > 0) || total <= rateMilli) return own / total;
  const asks = [own, ...peers].sort((x, y) => x - y);
  let left = rateMilli;
  let rest = total;
  for (let i = 0; i < asks.length; i++) {
    const d = asks[i] as number;
    if (d > left / (asks.length - i)) break;
    if (d === own) return own / rateMilli;
    left -= d;
    rest -= d;
  }
  return (left * own) / (rest * rateMilli);
}

/**
 * Live peers without a current figure for `sk` whose watermark here has not passed the start
 * of this run: what they did since it began (a figure, if they burst too) has not arrived yet.
 */
function unheardSince(s: ReplicaState, sk: ShareKey, t: number): number {
  let n = 0;
  for (const [id, r] of s.reg.incs) {
    if (id === s.self || r.retired >= 0 || r.wm > sk.since) continue;
    const f = sk.peers.get(id);
    if (f === undefined || !isCurrent(s, id, f, t)) n += 1;
  }
  return n;
}

/** Recomputes phase and shares of `sk` at stamp `t` from the figures held now. */
function refreshShare(s: ReplicaState, sk: ShareKey, t: number): void {
  refill(sk, t);
  const before = sk.phase;
  const peerDemands: number[] = [];
  let peerDemand = 0;
  for (const [id, f] of sk.peers) {
    if (id === s.self || !isCurrent(s, id, f, t)) continue;
    peerDemands.push(f.rateMilli);
    peerDemand += f.rateMilli;
  }
  const k = peerDemands.length;
  const young = sk.probe && t - sk.since < s.opts.shareProbeUs;
  if (k > 0) {
    sk.phase = "share";
    // Own demand before its first tick in this run is unknown: count it as an average peer's.
    const own = sk.own === undefined ? peerDemand / k : ownRatePerUs(s, sk, t) * 1e9;
    // A young run also counts the live peers not heard from since it began: they may be bursting
    // too, their figures still on the way (a share taken from the first figure to arrive would
    // be a half where a tenth is due). Each counts as an average demander.
    const unheard = young ? unheardSince(s, sk, t) : 0;
    const average = (own + peerDemand) / (k + 1);
    for (let i = 0; i < unheard; i++) peerDemands.push(average);
    sk.capShare = 1 / (k + unheard + 1);
    const rateMilli = sk.rate === undefined ? undefined : (sk.rate.refillTokens * 1e9) / sk.rate.refillPeriodUs;
    const fraction = refillFraction(own, peerDemands, rateMilli);
    // An established run gets headroom (SHARE_HEADROOM); a young one, as in a burst after idleness, exact shares.
    sk.refillShare = young ? fraction : Math.min(1, fraction * (1 + SHARE_HEADROOM));
  } else if (young) {
    sk.phase = "probe";
    sk.capShare = 1 / liveCount(s);
    sk.refillShare = sk.capShare;
  } else {
    sk.phase = "whole";
    sk.capShare = 1;
    sk.refillShare = 1;
  }
  if (sk.rate !== undefined) {
    const cap = capUnits(sk, sk.rate);
    // Entering a share from the whole bucket starts it full (nothing of it was spent yet).
    if (before === "whole" && sk.phase !== "whole") sk.level = cap;
    else sk.level = Math.min(sk.level, cap);
  }
}

/** Resumes `sk` for an access at `t`: a new run of demand after idleness, or a first access since the last tick. */
function resume(s: ReplicaState, sk: ShareKey, t: number): void {
  if (t - sk.lastDemandAt > s.opts.shareStaleUs) {
    // A new run of demand after idleness: probe again only if peers demanded this key lately;
    // a replica that has been the key's only writer keeps the whole bucket.
    sk.decayed = 0;
    sk.since = t;
    sk.lastTickAt = t;
    sk.own = undefined;
    sk.probe = sk.peers.size > 0;
    refreshShare(s, sk, t);
  } else if (!s.share.dirty.has(sk)) refreshShare(s, sk, t);
}

function useRate(sk: ShareKey, rate: Rate, t: number): void {
  if (sk.rate === rate) return;
  sk.level = sk.rate === undefined ? capUnits(sk, rate) : (sk.level / sk.rate.unitsPerToken) * rate.unitsPerToken;
  sk.rate = rate;
  sk.levelAt = t;
}

/**
 * Units this replica may admit of `key` at `t` beside the replicated level `level`, for a cost
 * of `costUnits`: `level` itself in the whole phase or when the share holds the cost (or is
 * full: a cost above a small share is admitted once from a full share), else less than the cost.
 * A key with no share record yet (no demand, no figure) has a full share: `level`.
 */
export function shareLevel(s: ReplicaState, key: string, rate: Rate, costUnits: number, level: number, t: number): number {
  const sk = s.share.keys.get(key);
  if (sk === undefined) return level;
  resume(s, sk, t);
  useRate(sk, rate, t);
  if (sk.phase === "whole") return level;
  refill(sk, t);
  if (sk.level >= Math.min(costUnits, capUnits(sk, rate))) return level;
  return Math.min(level, Math.floor(sk.level));
}

/**
 * Microseconds from `t` until `key`'s share holds `costUnits` (or is full, for a cost above it),
 * at the share's refill (a fraction of the rate): what a caller denied by its share should wait.
 * 0 when the key has no share here, is whole, or its share holds the cost already.
 */
export function shareWaitUs(s: ReplicaState, key: string, rate: Rate, costUnits: number, t: number): number {
  const sk = s.share.keys.get(key);
  if (sk === undefined || sk.phase === "whole" || sk.rate !== rate) return 0;
  refill(sk, t);
  const need = Math.min(costUnits, capUnits(sk, rate));
  if (sk.level >= need) return 0;
  const perMicro = rate.unitsPerMicro * sk.refillShare;
  return perMicro > 0 ? Math.ceil((need - sk.level) / perMicro) : 0;
}

/** Records `tokens` demanded of `key` (limit `rate`) at `t`: a consuming decision, allowed or denied. */
export function noteDemand(s: ReplicaState, key: string, rate: Rate, tokens: number, t: number): void {
  let sk = s.share.keys.get(key);
  if (sk === undefined) {
    sk = newShareKey(key, t);
    s.share.keys.set(key, sk);
    refreshShare(s, sk, t);
  } else resume(s, sk, t);
  useRate(sk, rate, t);
  sk.pending += tokens;
  sk.lastDemandAt = t;
  s.share.dirty.add(sk);
}

/** Takes `units` admitted from `key`'s share at `t`. */
export function debitShare(s: ReplicaState, key: string, units: number, t: number): void {
  const sk = s.share.keys.get(key);
  if (sk === undefined || sk.phase === "whole") return;
  refill(sk, t);
  sk.level -= units;
}

/**
 * Flush-timer work: folds the demand since the last tick into each key's estimate, publishes
 * the figure (the key part goes out with the next delta), refreshes the shares, and now and then
 * forgets keys and figures not heard of for `shareMemoryUs`.
 */
export function tickShares(s: ReplicaState, t: number): void {
  const tau = Math.max(1, s.opts.demandTauUs);
  for (const sk of s.share.dirty) {
    sk.decayed = sk.decayed * Math.exp(-Math.max(0, t - sk.lastTickAt) / tau) + sk.pending;
    sk.pending = 0;
    sk.lastTickAt = t;
    sk.own = { at: t, rateMilli: Math.ceil(ownRatePerUs(s, sk, t) * 1e9) };
    const rec = s.keys.get(sk.key);
    if (rec !== undefined) markKeyChanged(s, rec);
    refreshShare(s, sk, t);
  }
  s.share.dirty.clear();
  sweepShares(s, t);
}

/** Keys looked at per tick by the sweep: bounded work per flush whatever the number of keys. */
const SWEEP_PER_TICK = 256;

/** Forgets figures and keys not heard of for `shareMemoryUs`, a few keys per tick (deleting while iterating a Map is safe). */
function sweepShares(s: ReplicaState, t: number): void {
  const memory = s.opts.shareMemoryUs;
  const sh = s.share;
  if (sh.keys.size === 0) return;
  for (let i = 0; i < SWEEP_PER_TICK; i++) {
    sh.sweep ??= sh.keys.entries();
    const next = sh.sweep.next();
    if (next.done === true) {
      sh.sweep = undefined;
      return;
    }
    const [key, sk] = next.value;
    for (const [id, f] of sk.peers) if (f.at < t - memory || s.reg.incs.get(id)?.retired !== -1) sk.peers.delete(id);
    if (sk.peers.size === 0 && sk.lastDemandAt < t - memory && !sh.dirty.has(sk)) sh.keys.delete(key);
  }
}

/** This replica's demand figure for `key`, for its key part; undefined if it has none. */
export function ownFigure(s: ReplicaState, key: string): DemandFigure | undefined {
  return s.share.keys.get(key)?.own;
}

/**
 * Joins writer `id`'s figure for `key`, brought by `origin`'s delta (last writer wins by stamp);
 * `latest` bounds how far ahead a stamp may be. Returns the figure held if this one replaced
 * what was held (the caller stamps its `seq`, so it is relayed), else undefined.
 */
export function joinFigure(
  s: ReplicaState,
  key: string,
  id: IncId,
  f: DemandFigure,
  latest: number,
  origin: IncId,
): HeldFigure | undefined {
  if (id === s.self || f.at > latest) return undefined;
  let sk = s.share.keys.get(key);
  if (sk === undefined) {
    // Learning of a peer's demand before any here: remembered so a first burst here shares.
    sk = newShareKey(key, f.at);
    sk.lastDemandAt = Number.NEGATIVE_INFINITY;
    s.share.keys.set(key, sk);
  }
  const had = sk.peers.get(id);
  if (had !== undefined && (f.at < had.at || (f.at === had.at && f.rateMilli <= had.rateMilli))) return undefined;
  const held: HeldFigure = { at: f.at, rateMilli: f.rateMilli, origin, seq: 0 };
  sk.peers.set(id, held);
  return held;
}

/** The peers' figures held for `key` (writer to figure), for relaying; undefined if none. */
export function heldFigures(s: ReplicaState, key: string): ReadonlyMap<IncId, HeldFigure> | undefined {
  const peers = s.share.keys.get(key)?.peers;
  return peers === undefined || peers.size === 0 ? undefined : peers;
}

/** The phase and shares of `key` here, for inspection (tests, metrics). */
export function shareOf(s: ReplicaState, key: string): { phase: SharePhase; capShare: number; refillShare: number } | undefined {
  const sk = s.share.keys.get(key);
  return sk === undefined ? undefined : { phase: sk.phase, capShare: sk.capShare, refillShare: sk.refillShare };
}
