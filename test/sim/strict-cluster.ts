// Strict mode on the simulated network: each node runs the real CRDT replica (the Cluster) plus
// the real escrow core (src/core/escrow): a KeyHolder per key on every node and a KeyBank per
// key on the bank node. Requests and grants travel over the same lossy, duplicating, partitioned
// links as deltas and are validated as a peer's would be. A strict admission is written into
// the CRDT as ordinary consumption, so Query on any replica sees it. Every clock a node reads is
// its own raw clock (true time plus skew); the arrival log is in true time.

import { type EscrowGrant, type EscrowRequest, KeyBank, KeyHolder, validateGrant, validateRequest } from "../../src/core/escrow/index.ts";
import { Cluster, type ClusterOptions, type SimNode } from "./cluster.ts";

export interface StrictOptions extends ClusterOptions {
  readonly leaseUs: number;
  /** The bank of every key (the smallest name, as the config would pick). */
  readonly bank: string;
}

export interface StrictAdmission {
  readonly t: number;
  readonly node: string;
  readonly cost: number;
  /** The key admitted (absent in logs of one key). */
  readonly key?: string;
}

interface Escrow {
  /** The holder id: this node's incarnation of the escrow state (new after a restart). */
  readonly id: string;
  readonly holders: Map<string, KeyHolder>;
  /** Only on the bank node. */
  readonly banks: Map<string, KeyBank>;
}

export class StrictCluster {
  readonly c: Cluster;
  readonly admissions: StrictAdmission[] = [];
  readonly denied = { tokens: 0, escrow: 0 };
  readonly deniedAt = new Map<string, { tokens: number; escrow: number }>();
  rejected = 0;
  readonly rejections: string[] = [];
  /** Requests a holder could not send: no link to the bank (a topology without that edge). */
  unsent = 0;
  /** Grants the bank sent, with the bank's true send time (for the reuse figure). */
  onGrant: ((g: EscrowGrant, t: number) => void) | undefined;
  private readonly escrow = new Map<string, Escrow | undefined>();
  private boots = 0;
  /** Off once quiescence begins: holders ask every flush, so escrow traffic never goes quiet. */
  private asking = true;

  constructor(readonly opts: StrictOptions) {
    this.c = new Cluster(opts);
  }

  get now(): number {
    return this.c.now;
  }

  private node(name: string): SimNode {
    return this.c.node(name);
  }

  private bootEscrow(name: string): void {
    this.escrow.set(name, { id: `${name}#${this.boots++}`, holders: new Map(), banks: new Map() });
  }

  /** The escrow state of a node (undefined while it is down). */
  state(name: string): Escrow | undefined {
    return this.escrow.get(name);
  }

  start(): void {
    this.c.start();
    for (const n of this.c.nodes.values()) {
      this.bootEscrow(n.name);
      this.c.queue.at(this.c.rng.int(0, this.opts.flushUs), () => this.flush(n.name));
    }
  }

  private bankOf(name: string, key: string): KeyBank | undefined {
    const e = this.escrow.get(name);
    if (e === undefined || name !== this.opts.bank) return undefined;
    let b = e.banks.get(key);
    if (b === undefined) {
      b = new KeyBank(name, key, this.c.config.rate, this.opts.leaseUs, this.c.raw(this.node(name)));
      e.banks.set(key, b);
    }
    return b;
  }

  private holderOf(e: Escrow, name: string, key: string): KeyHolder {
    let h = e.holders.get(key);
    if (h === undefined) {
      h = new KeyHolder(this.c.config.rate, this.opts.leaseUs, this.c.raw(this.node(name)));
      e.holders.set(key, h);
    }
    return h;
  }

  private flush(name: string): void {
    if (!this.asking) return;
    this.c.queue.at(this.now + this.opts.flushUs, () => this.flush(name));
    const e = this.escrow.get(name);
    const n = this.node(name);
    if (e === undefined || !n.alive) return;
    const raw = this.c.raw(n);
    for (const [key, h] of e.holders) {
      const ask = h.request(raw);
      const req: EscrowRequest = { holder: e.id, key, seq: ask.seq, demandPerSecond: ask.demandPerSecond };
      if (name === this.opts.bank) this.receiveRequest(name, req, e.id);
      // Escrow goes only on the holder's own link to the bank, never through a relay (as at the
      // edge, strict-escrow.ts): a holder with no such link gets no share and admits nothing.
      else if (!this.linked(name, this.opts.bank)) this.unsent += 1;
      else this.c.net.send(name, this.opts.bank, "escrow", { bytes: 0, deliver: () => this.receiveRequest(this.opts.bank, req, e.id) });
    }
    if (name !== this.opts.bank) return;
    for (const [key, b] of e.banks) {
      for (const g of b.grants(raw)) {
        this.onGrant?.(g, this.now);
        const to = g.holder.slice(0, g.holder.indexOf("#"));
        if (to === name) this.receiveGrant(name, g, key);
        else this.c.net.send(name, to, "escrow", { bytes: 0, deliver: () => this.receiveGrant(to, g, key) });
      }
    }
  }

  /** Whether the topology has a link between a and b (a full mesh has every one). */
  private linked(a: string, b: string): boolean {
    return this.c.net.neighbours(a, [b]).length === 1;
  }

  private receiveRequest(at: string, m: EscrowRequest, from: string): void {
    const e = this.escrow.get(at);
    if (e === undefined || !this.node(at).alive) return;
    const v = validateRequest(m, from);
    if (!v.ok) {
      this.reject(`${at}<-${from}: ${v.error.field} ${v.error.message}`);
      return;
    }
    this.bankOf(at, v.value.key)?.request(v.value, this.c.raw(this.node(at)));
  }

  private receiveGrant(at: string, m: EscrowGrant, key: string): void {
    const e = this.escrow.get(at);
    if (e === undefined || !this.node(at).alive) return;
    // A grant for an earlier incarnation of this node is for a holder that no longer exists.
    if (m.holder !== e.id) return;
    const h = this.holderOf(e, at, key);
    const v = validateGrant(m, { bank: this.opts.bank, holder: e.id, rate: this.c.config.rate });
    if (!v.ok) {
      this.reject(`${at}: ${v.error.field} ${v.error.message}`);
      return;
    }
    const applied = h.applyGrant(v.value, this.c.raw(this.node(at)));
    if (!applied.ok) this.reject(`${at}: ${applied.error.field} ${applied.error.message}`);
  }

  private reject(why: string): void {
    this.rejected += 1;
    if (this.rejections.length < 10) this.rejections.push(why);
  }

  /** One strict request at node `name` now: admitted only from the node's held share. */
  request(name: string, key: string, cost = 1): boolean {
    const n = this.node(name);
    const e = this.escrow.get(name);
    if (!n.alive || n.replica === undefined || e === undefined) return false;
    const raw = this.c.raw(n);
    const d = this.holderOf(e, name, key).admit(cost, raw);
    if (!d.allowed) {
      const reason = d.reason ?? "tokens";
      this.denied[reason] += 1;
      const per = this.deniedAt.get(name) ?? { tokens: 0, escrow: 0 };
      per[reason] += 1;
      this.deniedAt.set(name, per);
      return false;
    }
    // The spend, as ordinary consumption in the CRDT (Query anywhere reports it).
    const rate = this.c.config.rate;
    n.replica.access(key, this.c.config, cost, raw).debit(cost * rate.unitsPerToken);
    n.admitted += cost;
    this.admissions.push({ t: this.now, node: name, cost, key });
    return true;
  }

  /** Requests of `cost` tokens each at `perSec` (spacing jittered by ±jitter) from `from` to `to`. */
  load(name: string, key: string, perSec: number, from: number, to: number, jitter = 0.2, cost = 1): void {
    const gap = 1_000_000 / perSec;
    const rng = this.c.rng.fork(Number(name.replace(/\D/g, "")) * 131 + key.length + from + 17);
    const step = (t: number): void => {
      if (t >= to) return;
      this.c.queue.at(t, () => {
        this.request(name, key, cost);
        step(t + Math.max(1, Math.round(gap * (1 - jitter + 2 * jitter * rng.next()))));
      });
    };
    step(from + Math.floor(rng.next() * gap));
  }

  kill(name: string, at: number): void {
    this.c.kill(name, at);
    this.c.queue.at(at, () => this.escrow.set(name, undefined));
  }

  restart(name: string, at: number): void {
    this.c.restart(name, at);
    this.c.queue.at(at, () => this.bootEscrow(name));
  }

  partition(groups: readonly (readonly string[])[], from: number, to: number): void {
    this.c.partition(groups, from, to);
  }

  run(until: number): void {
    this.c.run(until);
  }

  /**
   * The cluster's quiescence (cluster.ts) with escrow stopped first: a holder asks every flush
   * while it holds a key, so with escrow on the network would never be idle and quiescence
   * would only end at its time limit. Loads must have ended (strict loads do not pause).
   */
  quiesce(maxUs?: number): number {
    this.asking = false;
    return this.c.quiesce(maxUs);
  }

  admittedBetween(from: number, to: number, node?: string): number {
    let n = 0;
    for (const a of this.admissions) if (a.t >= from && a.t < to && (node === undefined || a.node === node)) n += a.cost;
    return n;
  }
}

/**
 * Over-admission by the window definition, exactly: the largest, over every window [s, t], of
 * admitted − C − r·(t − s), in tokens, from the arrival log (true time). In exact units it is
 * max over t of (U(t) − q·t) − min over s ≤ t of (U(s⁻) − q·s) − C·p, one pass over the log.
 */
export function windowOverAdmission(
  admissions: readonly StrictAdmission[],
  rate: { readonly unitsPerToken: number; readonly unitsPerMicro: number; readonly capacityUnits: number },
): { readonly tokens: number; readonly at: number } {
  const sorted = [...admissions].sort((a, b) => a.t - b.t);
  let before = 0;
  let lowest = Number.POSITIVE_INFINITY;
  let worst = Number.NEGATIVE_INFINITY;
  let at = 0;
  for (const a of sorted) {
    lowest = Math.min(lowest, before - rate.unitsPerMicro * a.t);
    before += a.cost * rate.unitsPerToken;
    const excess = before - rate.unitsPerMicro * a.t - lowest - rate.capacityUnits;
    if (excess > worst) {
      worst = excess;
      at = a.t;
    }
  }
  return { tokens: sorted.length === 0 ? -rate.capacityUnits / rate.unitsPerToken : worst / rate.unitsPerToken, at };
}
