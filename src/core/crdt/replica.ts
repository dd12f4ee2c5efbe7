// One replica holding many keys: the object a server edge drives. It admits locally with no
// round trip, records its own consumption as running totals under its incarnation, and
// exchanges delta-intervals with peers. It reads no clock and starts no timer: every call takes
// the raw local clock `raw` (microseconds), and the edge calls `tick` on its flush timer.

import type { BucketAccess, DecisionOutcome } from "../decision.ts";
import { decide } from "../decision.ts";
import type { Rate } from "../rate.ts";
import { type ApplyResult, applyDelta, releaseHeld } from "./delta-in.ts";
import { deltaFor, restartRegionalStreams } from "./delta-out.ts";
import { type Lane, laneOf, newRouting, setLane } from "./forwarding.ts";
import { newHeartbeat, quietUntil, raiseDue } from "./heartbeat.ts";
import { ignoreKeyPrefixes, isIgnoredKey } from "./ignored-keys.ts";
import { birthOf, type IncId, makeIncarnationId } from "./incarnation.ts";
import { compareConfig, type KeyConfig } from "./key-config.ts";
import { afterKeyChange, hasTail, newDueHeap, touchKey } from "./key-index.ts";
import { cloneKeyState, findEntry, type KeyState, keyText, newKeyState } from "./key-state.ts";
import { afterOwnDebit, cachedLevel, type LevelOut } from "./level-cache.ts";
import { markChanged, markKeyChanged } from "./local-change.ts";
import { newSession, onAck, resetOut } from "./peer-session.ts";
import { liveFloor, newRegistry, registryText } from "./registry.ts";
import {
  bump,
  bumpWatermark,
  DEFAULT_OPTIONS,
  type KeyRecord,
  newClock,
  newKeyRecord,
  newStats,
  type ReplicaOptions,
  type ReplicaState,
  type ReplicaStats,
  stampAt,
} from "./replica-state.ts";
import {
  debitShare,
  isSharedKey,
  newShareState,
  noteDemand,
  type SharePhase,
  shareLevel,
  shareOf,
  shareWaitUs,
  tickShares,
} from "./share.ts";
import { collectKeys, dropRecord, foldAll, isFullAt, raiseOwnHorizon, renewIfRetired, retireSilent, wouldCollect } from "./timers.ts";
import { KnownLimits, type Limits } from "./validate.ts";
import type { Ack, Delta, UntrustedDelta } from "./wire.ts";

export interface ReplicaInit extends Partial<Omit<ReplicaOptions, "node" | "peers">> {
  readonly node: string;
  readonly peers: readonly string[];
  /** Raw clock at process start. */
  readonly nowUs: number;
  /** Randomness for incarnation ids (the core draws none): at least 18 hex digits per call. */
  readonly randomHex: () => string;
}

/**
 * The state of `replica`, for the core modules that act on it (snapshot.ts) and for the test-only
 * accessor in test/support. Not exported by index.ts, and `npm run check:core` fails any file of
 * src/ outside src/core that names it: the edge reads a replica through its methods only.
 */
export let replicaStateOf: (replica: Replica) => ReplicaState; // module state: set once, by Replica's static block

export class Replica {
  /** Private: everything outside this class reaches it through `replicaStateOf` (core) or the methods (edge). */
  readonly #s: ReplicaState;
  /** Scratch for cachedLevel (the hot path allocates only the access object). */
  readonly #out: LevelOut = { level: 0, rate: undefined as unknown as Rate };
  /** Birth of `#birthOf` (the current id), parsed once per id. */
  #birthOf = "";
  #birth = 0;

  static {
    replicaStateOf = (replica) => replica.#s;
  }

  constructor(init: ReplicaInit) {
    const { node, peers, nowUs, randomHex, ...rest } = init;
    const opts: ReplicaOptions = { ...DEFAULT_OPTIONS, ...rest, node, peers };
    for (const [name, v] of Object.entries(opts)) {
      if (typeof v === "number" && !(Number.isSafeInteger(v) && v >= 0))
        throw new TypeError(`replica option ${name} must be a non-negative integer, got ${v}`);
    }
    const self = makeIncarnationId(nowUs, randomHex());
    this.#s = {
      opts,
      reg: newRegistry(),
      keys: new Map(),
      self,
      counters: new Map(),
      open: new Map(),
      seq: 0,
      keptSeq: 0,
      sessions: new Map(),
      routing: newRouting(),
      lastHeard: new Map(),
      clock: newClock(),
      lastStamp: 0,
      startedAt: nowUs,
      ready: peers.length === 0,
      heldKeys: [],
      incomplete: new Map(),
      heldRecords: [],
      ignoredPrefixes: [],
      firstChanged: undefined,
      lastChanged: undefined,
      tails: new Set(),
      touched: new Set(),
      foldFloor: undefined,
      foldHorizon: 0,
      collect: newDueHeap(),
      heartbeat: newHeartbeat(nowUs),
      stats: newStats(),
      randomHex,
      share: newShareState(),
      knownLimits: new KnownLimits(),
    };
    this.#s.reg.incs.set(self, { wm: 0, retired: -1, seq: bump(this.#s) });
    this.#s.lastHeard.set(self, nowUs);
  }

  get incarnation(): IncId {
    return this.#s.self;
  }
  get ready(): boolean {
    return this.#s.ready;
  }
  get stats(): Readonly<ReplicaStats> {
    return this.#s.stats;
  }
  /** This replica's node name on the mesh. */
  get node(): string {
    return this.#s.opts.node;
  }
  /** The bounds every delta is validated against (snapshots are read through them too). */
  get limits(): Limits {
    return this.#s.opts.limits;
  }
  /** The local change sequence: a snapshot increment covers the changes after it. */
  get sequence(): number {
    return this.#s.seq;
  }
  /** Whether every change after sequence `from` only raised a watermark (bumpWatermark). */
  onlyWatermarksSince(from: number): boolean {
    return this.#s.keptSeq <= from;
  }

  /** What this replica holds of incarnation `id`'s registry record (a copy), or undefined. */
  incarnationRecord(id: IncId): { readonly wm: number; readonly retired: number } | undefined {
    const r = this.#s.reg.incs.get(id);
    return r === undefined ? undefined : { wm: r.wm, retired: r.retired };
  }

  /**
   * An outbound stream to `node` (re)opened. The same peer incarnation holds what it
   * acknowledged: resend from its last ack (what was sent after it may be lost with the old
   * connection). A new incarnation holds nothing of ours: resend everything. This is the
   * acknowledged delta-interval rule (Almeida, Shoker and Baquero, JPDC 2018, Algorithm 2).
   */
  outboundReopened(node: string, sameIncarnationAsBefore: boolean, raw: number): void {
    const session = this.#s.sessions.get(node);
    if (session === undefined) return; // first contact: the first delta covers everything
    if (sameIncarnationAsBefore) {
      session.sent = session.acked;
      session.lastProgressAt = raw;
    } else resetOut(session, raw);
  }

  /**
   * Sets what goes to peer `node` (forwarding.ts): the edge calls it when it learns the peer's
   * region and whenever the relay election changes. A new relay pair starts its stream from the
   * peer's last ack (or from scratch), so the delta-interval protocol resends what is missing.
   */
  setLane(node: string, lane: Lane, raw: number): void {
    if (setLane(this.#s.routing, node, lane)) restartRegionalStreams(this.#s, raw);
  }

  /** The lane of peer `node` (the `relay` option's default until the edge sets one). */
  laneOf(node: string): Lane {
    return laneOf(this.#s.routing, node, this.#s.opts.relay);
  }

  /**
   * Whether the stream to `node` may carry key parts without their header (proto
   * KeyDelta.header_omitted): the edge says so once the handshake agreed on a protocol version
   * that has them. Off until then, and for a peer that does not speak it.
   */
  omitHeadersTo(node: string, allowed: boolean, raw: number): void {
    let session = this.#s.sessions.get(node);
    if (session === undefined) {
      session = newSession(raw);
      this.#s.sessions.set(node, session);
    }
    session.omitHeaders = allowed;
  }

  /** The stamping clock at raw time `raw` (what levels are evaluated at). */
  stamp(raw: number): number {
    return stampAt(this.#s, raw);
  }

  private record(key: string, config: KeyConfig): KeyRecord {
    const s = this.#s;
    let rec = s.keys.get(key);
    if (rec === undefined) {
      rec = newKeyRecord(key, newKeyState(config, s.reg.horizon), bump(s));
      s.keys.set(key, rec);
      touchKey(s, rec, rec.seq);
      afterKeyChange(s, rec);
    } else if (config !== rec.state.config && compareConfig(config, rec.state.config) > 0) {
      // A newer policy from the edge: replicated with its own tEff (trap 10).
      rec.state.config = config;
      rec.walker = undefined;
      markKeyChanged(s, rec);
      afterKeyChange(s, rec);
    }
    return rec;
  }

  /** Level (units of the limit in force) of `key` now; a key never seen is full. */
  level(key: string, config: KeyConfig, raw: number): { level: number; config: KeyConfig } {
    const rec = this.#s.keys.get(key);
    const t = stampAt(this.#s, raw);
    if (rec === undefined) return { level: config.rate.capacityUnits, config };
    const out = this.#out;
    cachedLevel(rec, t, out);
    return { level: out.level, config: compareConfig(rec.state.config, config) >= 0 ? rec.state.config : config };
  }

  /** A `BucketAccess` for core/decision.ts: level() at `raw`, debit() records this incarnation's consumption. */
  access(key: string, config: KeyConfig, cost: number, raw: number): BucketAccess {
    const s = this.#s;
    // Never write under an id the mesh has retired or forgotten (its data there would be late).
    if (s.ready && !this.selfLive()) this.renewIfRetired(raw);
    const rec = this.record(key, config);
    const t = stampAt(s, raw);
    const out = this.#out;
    cachedLevel(rec, t, out);
    const level = s.ready ? out.level : Math.min(0, out.level);
    if (!isSharedKey(s, key)) return new KeyAccess(this, key, out.rate, cost, level, t, false);
    return new KeyAccess(this, key, out.rate, cost, shareLevel(s, key, out.rate, cost * out.rate.unitsPerToken, level, t), t, true);
  }

  /** Share mode: microseconds from stamp `t` until `key`'s share here holds `costUnits` (0: it does, or no share applies). @internal */
  shareWaitAt(key: string, rate: Rate, costUnits: number, t: number): number {
    return shareWaitUs(this.#s, key, rate, costUnits, t);
  }

  /** Records a consuming decision on `key` at stamp `t` (share mode's demand), and takes `units` from its share if admitted. @internal */
  demandAt(key: string, rate: Rate, tokens: number, admittedUnits: number, t: number): void {
    noteDemand(this.#s, key, rate, tokens, t);
    if (admittedUnits > 0) debitShare(this.#s, key, admittedUnits, t);
  }

  /**
   * Keys under `prefixes` run in the contention mode other than the `contention` option
   * (replacing the previous list). For the edge: the prefixes of the bucket ids of the policies
   * whose `contention` setting differs from the replica's default (as for ignoreKeyPrefixes).
   * Read on every decision: list only the exceptions.
   */
  setOtherContentionPrefixes(prefixes: readonly string[]): void {
    this.#s.share.otherModePrefixes = [...prefixes];
  }

  /** The contention mode of keys under no listed prefix (the `contention` option). */
  get defaultContention(): "share" | "local" {
    return this.#s.opts.contention;
  }

  /** The contention mode `key` runs in here. */
  contentionOf(key: string): "share" | "local" {
    return isSharedKey(this.#s, key) ? "share" : "local";
  }

  /** Share mode's phase and shares for `key` here (undefined: no demand or figure seen), for inspection. */
  shareOf(key: string): { phase: SharePhase; capShare: number; refillShare: number } | undefined {
    return shareOf(this.#s, key);
  }

  /** Whether this incarnation may still write (not retired, not forgotten); no id parsing per call. */
  private selfLive(): boolean {
    const s = this.#s;
    const me = s.reg.incs.get(s.self);
    if (me === undefined || me.retired >= 0) return false;
    if (this.#birthOf !== s.self) {
      this.#birthOf = s.self;
      this.#birth = birthOf(s.self);
    }
    return this.#birth >= s.reg.horizon;
  }

  /** Admit-or-deny `cost` tokens of `key` at `raw` (single-bucket convenience over decide()). */
  consume(key: string, config: KeyConfig, cost: number, raw: number): DecisionOutcome {
    return decide([this.access(key, config, cost, raw)], true);
  }

  query(key: string, config: KeyConfig, raw: number): DecisionOutcome {
    return decide([this.access(key, config, 1, raw)], false);
  }

  /** Records `tokens` consumed at stamp `t` as a running total under this incarnation (the debit of an access). @internal */
  debitAt(key: string, tokens: number, t: number): void {
    const s = this.#s;
    const rec = s.keys.get(key);
    if (rec === undefined || tokens <= 0) return;
    const total = s.counters.get(key) ?? 0;
    s.counters.set(key, total + tokens);
    // A debit changes the key's entries, not its header (limit, prefix, K, horizon): the key moves
    // in the change list, and its header stays as acknowledged, so a peer that holds it gets the
    // entry alone (header-omission.ts). Before any return below: the key is marked.
    const seq = bump(s);
    touchKey(s, rec, seq);
    const entries = rec.state.entries;
    let e = s.open.get(key);
    let inserted: number | undefined;
    if (e === undefined || e.c1 !== total || t - e.slot >= Math.max(1, s.opts.slotWidthUs)) {
      const at = findEntry(entries, t, s.self);
      if (at < 0) {
        e = { inc: s.self, slot: t, c0: total, c1: total, seq };
        inserted = ~at;
        if (inserted === entries.length) entries.push(e);
        else entries.splice(inserted, 0, e);
        s.touched.add(rec);
      } else {
        // Same stamp as an entry closed by a watermark at exactly t: still not "before" t.
        e = entries[at];
        if (e === undefined || e.c1 !== total) return;
      }
    }
    e.c1 += tokens;
    markChanged(e, seq);
    s.open.set(key, e);
    afterOwnDebit(rec, e, inserted);
  }

  /** The next delta for peer `node`, or undefined if it holds everything. */
  deltaFor(node: string, raw: number): Delta | undefined {
    return deltaFor(this.#s, node, raw);
  }

  /** Validates and joins a peer's delta. On error nothing changed, and the edge closes that stream. */
  applyDelta(delta: UntrustedDelta, raw: number): ApplyResult {
    const r = applyDelta(this.#s, delta, raw);
    this.checkReady(raw);
    return r;
  }

  applyAck(ack: Ack, raw: number): void {
    const session = this.#s.sessions.get(ack.node);
    if (session === undefined || ack.peerInc !== this.#s.self) return;
    onAck(session, ack.upTo, raw);
    if (ack.gap === true && session.acked < session.sent) session.resendNow = true;
    // The peer dropped a key we sent only partly (it collected it as full): restamp it whole.
    for (const key of Array.isArray(ack.missing) ? ack.missing.slice(0, 256) : []) {
      const rec = this.#s.keys.get(key);
      if (rec === undefined) continue;
      const seq = markKeyChanged(this.#s, rec);
      for (const e of rec.state.entries) markChanged(e, seq);
    }
    if (Number.isSafeInteger(ack.t1) && Number.isSafeInteger(ack.t2)) this.#s.clock.addSample(ack.node, ack.t1, ack.t2, raw);
    this.checkReady(raw);
  }

  private checkReady(raw: number): void {
    const s = this.#s;
    if (s.ready) return;
    const synced = [...s.sessions.values()].some((x) => x.synced);
    if ((synced && (!s.opts.clockSync || s.clock.hasSamples())) || raw - s.startedAt >= s.opts.warmupTimeoutUs) {
      s.ready = true;
      // The id was minted at boot on the raw clock. If that clock was fast, the birth is in the
      // attested future, and peers would (rightly) reject every slot stamped before it: mint a
      // new id at the attested time and retire the provisional one (nothing was written under it).
      const t = stampAt(s, raw);
      const prov = s.reg.incs.get(s.self);
      if (birthOf(s.self) > t && prov !== undefined) {
        // Not counted as a retirement written: no other replica ever saw this id write.
        prov.retired = t;
        markChanged(prov, bump(s));
        s.self = makeIncarnationId(t, s.randomHex());
        s.reg.incs.set(s.self, { wm: 0, retired: -1, seq: bump(s) });
        s.lastHeard.set(s.self, raw);
        for (const session of s.sessions.values()) resetOut(session, raw);
      }
      this.advanceWatermark(raw);
    }
  }

  /** Closes open slots and raises this incarnation's watermark to the stamping clock. */
  advanceWatermark(raw: number): void {
    const s = this.#s;
    this.checkReady(raw);
    if (!s.ready) return;
    const t = stampAt(s, raw);
    s.open.clear();
    const me = s.reg.incs.get(s.self);
    if (me !== undefined && t > me.wm) {
      me.wm = t;
      markChanged(me, bumpWatermark(s));
      s.lastHeard.set(s.self, raw);
    }
  }

  /**
   * Until when (raw clock) ticks would do nothing, so an edge may sleep; undefined while every
   * flush tick matters. Any access or applied change makes ticks matter again: the edge must
   * then tick on its flush interval from the next one on.
   */
  quietUntil(raw: number): number | undefined {
    return quietUntil(this.#s, raw);
  }

  /**
   * The edge tells, before each tick, whether any peer link is down: while one is, the
   * heartbeat does not back off (heartbeat.ts), so the peer gets current watermarks at the
   * normal pace from its first delta after the reconnect.
   */
  linkDown(down: boolean): void {
    this.#s.heartbeat.linkDown = down;
  }

  /** Applies held (too early) data the clock now admits; `tick` does this too. */
  releaseHeld(raw: number): void {
    releaseHeld(this.#s, raw);
  }

  /**
   * Flush-timer work: watermark (every tick while active, backed off while idle: heartbeat.ts),
   * held data, retirement, horizon, renewal, fold and collection.
   */
  tick(raw: number): void {
    if (raiseDue(this.#s, raw)) {
      this.#s.heartbeat.lastRaiseAt = raw;
      this.advanceWatermark(raw);
    }
    if (!this.#s.ready) return;
    releaseHeld(this.#s, raw);
    retireSilent(this.#s, raw);
    this.renewIfRetired(raw);
    raiseOwnHorizon(this.#s, raw);
    foldAll(this.#s, raw);
    collectKeys(this.#s, raw);
    tickShares(this.#s, stampAt(this.#s, raw));
  }

  /**
   * An incarnation that learns it was retired (or forgotten) continues at once under a fresh id,
   * keeping its state: its old running totals stay valid data, new consumption starts a new writer.
   */
  renewIfRetired(raw: number): boolean {
    return renewIfRetired(this.#s, raw);
  }

  /**
   * Canonical text of the replicated state, keys in order, full keys left out: those a tick at
   * the live floor would fold to an empty tail and collect. Collection is each replica's own
   * (timers.ts), and a key learned from a peer is not sent back to it, so one replica may still
   * hold a key the others collected; it answers like a new bucket all the same.
   */
  canonical(): string {
    const floor = liveFloor(this.#s.reg);
    const held = (key: string): KeyState => (this.#s.keys.get(key) as { state: KeyState }).state;
    const keys = [...this.#s.keys.keys()].filter((key) => !wouldCollect(held(key), floor)).sort();
    return [registryText(this.#s.reg), ...keys.map((key) => `${key}=${keyText(held(key))}`)].join("\n");
  }

  /** Canonical size of one key's state in bytes (UTF-8 of its canonical text). */
  keyBytes(key: string): number {
    const rec = this.#s.keys.get(key);
    return rec === undefined ? 0 : new TextEncoder().encode(keyText(rec.state)).length;
  }

  /** Whether `key` is held here (a key never seen, collected or dropped is not). No copy: for hot paths. */
  holdsKey(key: string): boolean {
    return this.#s.keys.has(key);
  }

  /** A copy of `key`'s replicated state, or undefined: for inspection (a reader cannot change the lattice through it). */
  keyState(key: string): KeyState | undefined {
    const rec = this.#s.keys.get(key);
    return rec === undefined ? undefined : cloneKeyState(rec.state);
  }

  /**
   * Per incarnation, the running total of `key` known here: the largest of its folded count, its
   * known count and its entries' totals. Undefined if the key is not held.
   */
  consumedBy(key: string): Map<IncId, number> | undefined {
    const state = this.#s.keys.get(key)?.state;
    if (state === undefined) return undefined;
    const consumed = new Map<IncId, number>();
    const raise = (inc: IncId, n: number): void => {
      consumed.set(inc, Math.max(consumed.get(inc) ?? 0, n));
    };
    for (const [inc, n] of state.prefix.F) raise(inc, n);
    for (const [inc, n] of state.K) raise(inc, n);
    for (const e of state.entries) raise(e.inc, e.c1);
    return consumed;
  }

  /**
   * Stops holding keys under `prefixes` (replacing the previous list): drops what this replica
   * holds of them now, and skips peers' parts for them from now on (counted in
   * `stats.keysIgnored`) while the rest of each delta joins as usual. For the edge's reload: a
   * removed policy is the prefix of its bucket ids. A prefix left out of a later call is joined
   * again. Returns the keys dropped (whatever their debt: the edge removed them on purpose).
   */
  ignoreKeyPrefixes(prefixes: readonly string[]): string[] {
    return ignoreKeyPrefixes(this.#s, prefixes);
  }

  /** Whether peers' parts for `key` are skipped here (see ignoreKeyPrefixes). */
  ignoresKey(key: string): boolean {
    return isIgnoredKey(this.#s, key);
  }

  /** Number of keys held (collected and dropped keys excluded). */
  get keyCount(): number {
    return this.#s.keys.size;
  }

  /**
   * Forgets `key` here: for an edge's LRU eviction. Like collection, it never resets this
   * incarnation's running total for the key, so later consumption is still charged from where
   * it left off, and a peer that sends the key again loses nothing (entries are self-describing).
   *
   * Returns "absent" if the key is not held; "full" if it answered like a new bucket (empty
   * tail, level at capacity at `raw`): dropping it loses nothing, as collection would; else
   * "unsafe": its debt, or tail data not folded yet, is forgotten here (count it, e.g.
   * `evictions_unsafe_total`, and size the LRU so it does not happen).
   */
  dropKey(key: string, raw: number): "absent" | "full" | "unsafe" {
    const s = this.#s;
    const rec = s.keys.get(key);
    if (rec === undefined) return "absent";
    // The collection test, at the stamping clock rather than the fold floor.
    const full = !hasTail(rec.state) && isFullAt(rec.state, stampAt(s, raw));
    dropRecord(s, rec);
    return full ? "full" : "unsafe";
  }
}

/**
 * One bucket of a decision (core/decision.ts). A class rather than an object of closures: one
 * allocation per access, and no per-call function objects.
 */
class KeyAccess implements BucketAccess {
  constructor(
    private readonly replica: Replica,
    private readonly key: string,
    readonly rate: Rate,
    readonly cost: number,
    private readonly units: number,
    private readonly t: number,
    /** Share mode: consuming decisions are demand, and admissions come out of the share too. */
    private readonly shared: boolean,
  ) {}

  level(): number {
    return this.units;
  }

  debit(units: number): void {
    this.replica.debitAt(this.key, Math.ceil(units / this.rate.unitsPerToken), this.t);
    if (this.shared) this.replica.demandAt(this.key, this.rate, this.cost, units, this.t);
  }

  denied(): void {
    if (this.shared) this.replica.demandAt(this.key, this.rate, this.cost, 0, this.t);
  }

  waitUs(): number {
    return this.shared ? this.replica.shareWaitAt(this.key, this.rate, this.cost * this.rate.unitsPerToken, this.t) : 0;
  }
}
