// A hand-driven mesh of real replicas for the trap tests: the test decides which delta is
// delivered, lost, duplicated or reordered, and when each clock moves.

import { DEFAULT_LIMITS, type Delta, type KeyConfig, makeKeyConfig, Replica, type ReplicaInit } from "../../src/core/crdt/index.ts";
import { viaWire } from "../support/via-wire.ts";

export const LIMIT = { capacity: 10, refillTokens: 1000, refillPeriodUs: 1_000_000 };

export function config(capacity = 10, refillTokens = 1000, version = 0, tEff = 0): KeyConfig {
  const made = makeKeyConfig({ capacity, refillTokens, refillPeriodUs: 1_000_000 }, version, tEff);
  if (!made.ok) throw new Error(made.error.message);
  return made.value;
}

export class Mesh {
  readonly r = new Map<string, Replica>();
  now: number;
  private ids = 0;

  constructor(
    readonly names: readonly string[],
    readonly extra: Partial<ReplicaInit> = {},
    start = 1_000_000,
  ) {
    this.now = start;
    for (const n of names) this.boot(n);
  }

  boot(name: string, skewUs = 0, extra: Partial<ReplicaInit> = {}): Replica {
    const rep = new Replica({
      warmupTimeoutUs: 0,
      limits: { ...DEFAULT_LIMITS, policyMax: { capacity: 10, tokensPerSecond: 1000 } },
      ...this.extra,
      ...extra,
      node: name,
      peers: this.names.filter((x) => x !== name),
      nowUs: this.now + skewUs,
      randomHex: () => (++this.ids).toString(16).padStart(18, "0"),
    });
    this.r.set(name, rep);
    return rep;
  }

  get(name: string): Replica {
    const rep = this.r.get(name);
    if (rep === undefined) throw new Error(name);
    return rep;
  }

  /** A delta from → to, without delivering it. */
  delta(from: string, to: string): Delta | undefined {
    return this.get(from).deltaFor(to, this.now);
  }

  /** Delivers `d` to `to` and its ack back; returns whether it was accepted. */
  deliver(d: Delta | undefined, to: string): boolean {
    if (d === undefined) return false;
    const res = this.get(to).applyDelta(viaWire(d), this.now);
    if (res.ok) this.r.get(d.node)?.applyAck(res.value, this.now);
    return res.ok;
  }

  /** Advances time, ticks everyone, and exchanges deltas between every live pair until quiet. */
  round(dt: number, alive: readonly string[] = this.names): void {
    this.now += dt;
    for (const n of alive) this.get(n).tick(this.now);
    for (let pass = 0; pass < 4; pass++) {
      for (const a of alive) for (const b of alive) if (a !== b) this.deliver(this.delta(a, b), b);
    }
  }
}
