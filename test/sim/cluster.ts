// N replicas of the real core on the simulated network, with loads, kills, restarts, skews and
// partitions, and the record every figure is computed from. Each replica reads only its own
// raw clock (true time plus its skew); the ideal bucket and the true global level use true time.

import { DEFAULT_LIMITS, type KeyConfig, makeKeyConfig, Replica, type ReplicaOptions } from "../../src/core/crdt/index.ts";
import { refilled } from "../../src/core/crdt/replay.ts";
import type { LimitSpec } from "../../src/core/rate.ts";
import { HEADER_OMITTED_SINCE, PROTOCOL_VERSIONS } from "../../src/mesh/handshake.ts";
import { GcraReference } from "../support/gcra.ts";
import { stateOf } from "../support/replica-state.ts";
import { EventQueue } from "./event-queue.ts";
import { type LinkSpec, Network } from "./network.ts";
import { Prng } from "./prng.ts";
import { type RegionSpec, Regions } from "./regions.ts";
import { ackMessage, DEFAULT_MAX_MESSAGE_BYTES, deltaMessages, negotiatedVersion, readAckMessage, readDeltaMessage } from "./wire-path.ts";

export interface ClusterOptions {
  readonly seed: number;
  /** `versions`: the protocol versions the node's build speaks (default: this build's). */
  readonly nodes: readonly { readonly name: string; readonly skewUs?: number; readonly versions?: { min: number; max: number } }[];
  readonly topology?: readonly (readonly [string, string])[];
  readonly link: LinkSpec;
  readonly flushUs: number;
  readonly limit: LimitSpec;
  readonly replica?: Partial<Omit<ReplicaOptions, "node" | "peers">>;
  /** Regions with relays (regions.ts): per-node region, cross-region delay, link-down detection. */
  readonly regions?: RegionSpec;
  /** The mesh's `mesh.maxMessageBytes` the links chunk deltas by (default: the mesh's default). */
  readonly maxMessageBytes?: number;
}

export interface Admission {
  readonly t: number;
  readonly node: string;
  readonly key: string;
  readonly cost: number;
  /** Incarnation and slot (stamp) the consumption was recorded at. */
  readonly inc: string;
  readonly slot: number;
  /** True global level (tokens, exact units / p) right after this admission, debt allowed. */
  readonly trueLevel: number;
}

export class SimNode {
  replica: Replica | undefined;
  alive = true;
  admitted = 0;
  denied = 0;
  constructor(
    readonly name: string,
    public skewUs: number,
  ) {}
}

interface KeyTruth {
  ideal: GcraReference;
  idealAdmitted: number;
  /** Exact units, debt allowed: the level a single bucket would have after all real admissions. */
  level: number;
  at: number;
}

export class Cluster {
  readonly queue = new EventQueue();
  readonly rng: Prng;
  readonly net: Network;
  readonly config: KeyConfig;
  readonly nodes = new Map<string, SimNode>();
  readonly admissions: Admission[] = [];
  readonly truth = new Map<string, KeyTruth>();
  /** Called after each admission (figures that need streaming state). */
  onAdmit: ((a: Admission) => void) | undefined;
  /** Called after a replica applied a peer's delta (figures that follow propagation). */
  onApplied: ((to: SimNode, from: string, keys: number) => void) | undefined;
  ticking = true;
  loadOn = true;
  rejected = 0;
  readonly rejections: string[] = [];
  /** Key parts received, whole and without their header. */
  partsWhole = 0;
  partsEntriesOnly = 0;
  /** Protocol version of the stream a→b ("a>b"), agreed when either end boots. */
  private readonly versions = new Map<string, number>();
  /** Deltas made by the replicas (each one message, or several chunks: `net.traffic` counts messages). */
  deltasSent = 0;
  private readonly names: string[];
  private boots = 0;
  /** Relay election, lanes and cross-region byte counts, when the cluster has regions. */
  readonly regions: Regions | undefined;

  constructor(readonly opts: ClusterOptions) {
    this.rng = new Prng(opts.seed);
    this.net = new Network(this.queue, this.rng.fork(1), opts.link, opts.topology);
    const made = makeKeyConfig(opts.limit);
    if (!made.ok) throw new Error(made.error.message);
    this.config = made.value;
    this.names = opts.nodes.map((n) => n.name);
    for (const n of opts.nodes) this.nodes.set(n.name, new SimNode(n.name, n.skewUs ?? 0));
    this.regions = opts.regions === undefined ? undefined : new Regions(opts.regions, this.net, () => this.queue.now);
  }

  get now(): number {
    return this.queue.now;
  }

  raw(node: SimNode): number {
    return this.queue.now + node.skewUs;
  }

  node(name: string): SimNode {
    const n = this.nodes.get(name);
    if (n === undefined) throw new Error(`no node ${name}`);
    return n;
  }

  private boot(n: SimNode): void {
    const ids = this.rng.fork(this.queue.now * 7 + (this.names.indexOf(n.name) + 1) * 7919 + this.boots++);
    const l = this.opts.limit;
    n.replica = new Replica({
      // Peers bound counts by content against the mesh's policies (here: the one limit, or wider).
      limits: { ...DEFAULT_LIMITS, policyMax: { capacity: l.capacity, tokensPerSecond: (l.refillTokens * 1e6) / l.refillPeriodUs } },
      ...this.opts.replica,
      node: n.name,
      peers: this.net.neighbours(n.name, this.names),
      nowUs: this.raw(n),
      randomHex: () => ids.hex(18),
    });
    n.alive = true;
    this.regions?.route(this, n, this.net.neighbours(n.name, this.names));
    this.handshake(n);
  }

  /** What the Hello exchange of a (re)started node's streams settles: the version, per direction. */
  private handshake(n: SimNode): void {
    const identity = (m: SimNode) => ({
      cluster: "sim",
      region: "sim",
      node: m.name,
      incarnation: m.replica?.incarnation ?? "",
      versions: this.opts.nodes.find((x) => x.name === m.name)?.versions ?? PROTOCOL_VERSIONS,
    });
    for (const peer of this.net.neighbours(n.name, this.names)) {
      const m = this.node(peer);
      if (m.replica === undefined) continue; // it handshakes when it boots
      for (const [a, b] of [
        [n, m],
        [m, n],
      ] as const) {
        const v = negotiatedVersion(identity(a), identity(b));
        this.versions.set(`${a.name}>${b.name}`, v);
        a.replica?.omitHeadersTo(b.name, v >= HEADER_OMITTED_SINCE, this.raw(a));
      }
    }
  }

  /** Boots every node and starts its flush timer at a random phase. */
  start(): void {
    for (const n of this.nodes.values()) {
      this.boot(n);
      this.queue.at(this.rng.int(0, this.opts.flushUs), () => this.flush(n));
    }
  }

  private flush(n: SimNode): void {
    this.queue.at(this.queue.now + this.opts.flushUs, () => this.flush(n));
    if (!n.alive || n.replica === undefined) return;
    if (this.ticking) n.replica.tick(this.raw(n));
    this.regions?.route(this, n, this.net.neighbours(n.name, this.names));
    this.sendAll(n);
  }

  /** Sends each neighbour what it may lack; returns how many deltas went out. */
  sendAll(n: SimNode, reliable = false): number {
    const r = n.replica;
    if (!n.alive || r === undefined) return 0;
    let count = 0;
    for (const peer of this.net.neighbours(n.name, this.names)) {
      const d = r.deltaFor(peer, this.raw(n));
      if (d === undefined) continue;
      count += 1;
      this.regions?.countDelta(n.name, peer, d);
      this.deltasSent += 1;
      // As bytes: the mesh's codec and chunking, each chunk a message with its own faults.
      const messages = deltaMessages(d, this.opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES).map((bytes) => ({
        bytes: bytes.length,
        deliver: () => this.receive(peer, n.name, bytes),
      }));
      this.net.sendSequence(n.name, peer, "delta", messages, reliable);
    }
    return count;
  }

  private reject(to: string, from: string, why: string, delta?: unknown): void {
    this.rejected += 1;
    this.rejections.push(`${to}<-${from} at ${this.now}: ${why} ${process.env.SIM_DEBUG && delta ? JSON.stringify(delta) : ""}`);
  }

  private receive(to: string, from: string, bytes: Uint8Array): void {
    const n = this.node(to);
    if (!n.alive || n.replica === undefined) return;
    const delta = readDeltaMessage(bytes, from, this.versions.get(`${from}>${to}`) ?? 1);
    if (typeof delta === "string") {
      this.reject(to, from, delta);
      return;
    }
    for (const k of delta.keys) {
      if (k.headerOmitted === true) this.partsEntriesOnly += 1;
      else this.partsWhole += 1;
    }
    const res = n.replica.applyDelta(delta, this.raw(n));
    if (!res.ok) {
      this.reject(to, from, `${res.error.field} ${res.error.message}`, delta);
      return;
    }
    this.onApplied?.(n, from, delta.keys.length);
    this.regions?.countAck(to, from, res.value);
    const ack = ackMessage(res.value);
    this.net.send(to, from, "ack", {
      bytes: ack.length,
      deliver: () => {
        const m = this.node(from);
        const read = readAckMessage(ack, to);
        if (m.alive && m.replica !== undefined && read !== undefined) m.replica.applyAck(read, this.raw(m));
      },
    });
  }

  private truthOf(key: string): KeyTruth {
    let k = this.truth.get(key);
    if (k === undefined) {
      const l = this.opts.limit;
      k = {
        ideal: new GcraReference(l.capacity, l.refillTokens, l.refillPeriodUs),
        idealAdmitted: 0,
        level: this.config.rate.capacityUnits,
        at: 0,
      };
      this.truth.set(key, k);
    }
    return k;
  }

  /** One request at node `name` now. */
  request(name: string, key: string, cost = 1): boolean {
    const n = this.node(name);
    const truth = this.truthOf(key);
    if (truth.ideal.consume(this.now, cost)) truth.idealAdmitted += cost;
    if (!n.alive || n.replica === undefined) return false;
    const out = n.replica.consume(key, this.config, cost, this.raw(n));
    if (!out.allowed) {
      n.denied += 1;
      return false;
    }
    n.admitted += cost;
    const rate = this.config.rate;
    truth.level = refilled(rate, truth.level, this.now - truth.at) - cost * rate.unitsPerToken;
    truth.at = this.now;
    const slot = stateOf(n.replica).open.get(key)?.slot ?? this.now;
    const a: Admission = {
      t: this.now,
      node: name,
      key,
      cost,
      inc: n.replica.incarnation,
      slot,
      trueLevel: truth.level / rate.unitsPerToken,
    };
    this.admissions.push(a);
    this.onAdmit?.(a);
    return true;
  }

  /** Requests at `perSec` (spacing jittered by ±jitter) from `from` to `to` (true time). */
  load(name: string, key: string, perSec: number, from: number, to: number, jitter = 0.2): void {
    const gap = 1_000_000 / perSec;
    const rng = this.rng.fork(this.names.indexOf(name) * 131 + key.length + from);
    const step = (t: number): void => {
      if (t >= to) return;
      this.queue.at(t, () => {
        if (this.loadOn) this.request(name, key);
        step(t + Math.max(1, Math.round(gap * (1 - jitter + 2 * jitter * rng.next()))));
      });
    };
    step(from + Math.floor(rng.next() * gap));
  }

  kill(name: string, at: number): void {
    this.queue.at(at, () => {
      const n = this.node(name);
      n.alive = false;
      n.replica = undefined;
    });
  }

  restart(name: string, at: number): void {
    this.queue.at(at, () => this.boot(this.node(name)));
  }

  partition(groups: readonly (readonly string[])[], from: number, to: number): void {
    const side = new Map<string, number>();
    groups.forEach((g, i) => {
      for (const n of g) side.set(n, i);
    });
    this.net.partitions.push({ from, to, side });
  }

  run(until: number): void {
    this.queue.runUntil(until);
  }

  live(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.alive && n.replica !== undefined);
  }

  /**
   * Quiescence: no admissions, no watermark advance, no timers; deliver what is in flight and
   * what that causes (duplicates and reordering stay on, loss off) until nobody has anything
   * to send. Returns the virtual time it took.
   */
  quiesce(maxUs = 120_000_000): number {
    this.loadOn = false;
    this.ticking = false;
    const start = this.now;
    const link = this.net.link;
    this.net.link = { ...link, loss: 0 };
    let quiet = 0;
    while (this.now - start < maxUs) {
      this.queue.runUntil(this.now + this.opts.flushUs);
      // Held (too early) data is input waiting for the clock, not a timer: it is applied as
      // virtual time passes, as it would be on a live replica.
      for (const n of this.live()) n.replica?.releaseHeld(this.raw(n));
      let pending = this.net.inFlight;
      for (const n of this.live()) {
        if (n.replica === undefined) continue;
        const s = stateOf(n.replica);
        for (const [peer, session] of s.sessions) {
          // An idle link (relays: not a relay pair now) sends nothing, acknowledged or not.
          if (session.acked < session.sent && this.node(peer).alive && n.replica.laneOf(peer) !== "none") pending += 1;
        }
        pending += s.heldKeys.length + s.heldRecords.length;
      }
      quiet = pending === 0 ? quiet + 1 : 0;
      if (quiet >= 3) break;
    }
    this.net.link = link;
    return this.now - start;
  }
}
