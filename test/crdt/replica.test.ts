// Behaviour of the replica object around the lattice: no echo to the sender (not even of a key
// first learned from it), relay off in a full mesh, warm-up, renewal after retirement, restart
// retiring the previous incarnation.

import { describe, expect, it } from "vitest";
import { Cluster } from "../sim/cluster.ts";
import { config, Mesh } from "./mesh.ts";

const CFG = config();
const SLOW = config(10, 10);

describe("replica", () => {
  it("never echoes a peer's entries back to it", () => {
    const m = new Mesh(["a", "b"]);
    m.round(1_000);
    m.get("a").consume("k", CFG, 3, m.now);
    m.now += 5_000;
    m.get("a").tick(m.now);
    expect(m.deliver(m.delta("a", "b"), "b")).toBe(true);
    m.get("b").tick(m.now);
    const back = m.delta("b", "a");
    const aInc = m.get("a").incarnation;
    const echoed = back?.keys.flatMap((k) => k.entries.filter((e) => back.incarnations[e[0]] === aInc)) ?? [];
    expect(echoed).toEqual([]);
  });

  it("does not send a key it first learned from a peer back to that peer, nor on with relay off", () => {
    for (const relay of [true, false]) {
      const m = new Mesh(["a", "b", "c"], { relay });
      m.round(1_000);
      m.get("a").consume("fresh", CFG, 2, m.now);
      m.now += 5_000;
      m.get("a").tick(m.now);
      expect(m.deliver(m.delta("a", "b"), "b")).toBe(true);
      expect(m.get("b").keyState("fresh")).toBeDefined();
      const keysIn = (from: string, to: string): string[] => m.delta(from, to)?.keys.map((k) => k.key) ?? [];
      expect(keysIn("b", "a")).not.toContain("fresh");
      // Relay on: c hears of it from b as well (it may not be linked to a).
      expect(keysIn("b", "c").includes("fresh")).toBe(relay);
    }
  });

  it("with relay off, a full mesh still converges under loss, duplicates and reordering", () => {
    const c = new Cluster({
      seed: 5,
      nodes: ["n0", "n1", "n2", "n3"].map((name) => ({ name })),
      link: { delayUs: 20_000, jitterUs: 20_000, loss: 0.1, duplicate: 0.1 },
      flushUs: 5_000,
      limit: { capacity: 10, refillTokens: 1000, refillPeriodUs: 1_000_000 },
      replica: { relay: false, resendAfterUs: 200_000 },
    });
    c.start();
    for (const n of c.nodes.values()) c.load(n.name, "k", 800, 0, 5_000_000);
    c.run(5_000_000);
    c.quiesce();
    const texts = new Set(c.live().map((n) => n.replica?.canonical()));
    expect(texts.size).toBe(1);
  });

  it("does not serve before its first sync, then serves", () => {
    const m = new Mesh(["a", "b"], { warmupTimeoutUs: 10_000_000 });
    expect(m.get("a").consume("k", CFG, 1, m.now).allowed).toBe(false);
    m.round(1_000);
    m.round(1_000);
    expect(m.get("a").ready).toBe(true);
    expect(m.get("a").consume("k", CFG, 1, m.now).allowed).toBe(true);
  });

  it("renews its incarnation when it learns it was retired, keeping its state", () => {
    const m = new Mesh(["a", "b"], { retireAfterUs: 50_000 });
    m.round(1_000);
    m.get("a").consume("k", SLOW, 4, m.now); // 10 tokens/s: not full again for a while
    m.round(1_000);
    const old = m.get("a").incarnation;
    // b stops hearing from a for longer than T_retire, and retires it.
    for (let i = 0; i < 20; i++) {
      m.now += 5_000;
      m.get("b").tick(m.now);
    }
    expect(m.get("b").incarnationRecord(old)?.retired).toBeGreaterThanOrEqual(0);
    m.round(1_000); // a learns retired[a]
    m.round(1_000); // and renews at its next tick
    expect(m.get("a").incarnation).not.toBe(old);
    expect(m.get("a").stats.renewals).toBe(1);
    // Its old consumption is still in the state it kept.
    expect(
      m.get("a").keyState("k")?.prefix.F.get(old) ??
        m
          .get("a")
          .keyState("k")
          ?.entries.find((e) => e.inc === old)?.c1,
    ).toBe(4);
  });

  it("retires a node's previous incarnation as soon as the node's new one speaks", () => {
    const m = new Mesh(["a", "b"]);
    m.round(1_000);
    const old = m.get("a").incarnation;
    m.boot("a");
    m.round(1_000);
    expect(m.get("b").incarnationRecord(old)?.retired).toBeGreaterThanOrEqual(0);
  });
});
