// Share mode's demand figures across regions (src/core/crdt/share.ts, delta-out.ts): a figure is
// relayed where its writer's entries go (forwarding.ts), so with relays per region every replica
// counts every writer of a key, not only those whose own streams reach it.

import { describe, expect, it } from "vitest";
import { DEFAULT_LIMITS, type Delta, electRelays, type Replica, regionLanes, validateDelta } from "../../src/core/crdt/index.ts";
import { viaWire } from "../support/via-wire.ts";
import { config, Mesh } from "./mesh.ts";

const REGION: Record<string, string> = { a1: "a", a2: "a", b1: "b", b2: "b" };
const NAMES = Object.keys(REGION);
const SHARE = { contention: "share", relay: false } as const;

/** Lanes of every replica with every link up: relays a1 and b1. */
function wire(m: Mesh): void {
  for (const self of NAMES) {
    const peers = NAMES.filter((p) => p !== self).map((p) => ({ node: p, region: REGION[p] as string, reachable: true }));
    const relays = electRelays(self, REGION[self] as string, peers);
    for (const [peer, lane] of regionLanes(self, REGION[self] as string, peers, relays)) m.get(self).setLane(peer, lane, m.now);
  }
}

function demand(m: Mesh, r: Replica, key: string, tries: number): void {
  for (let i = 0; i < tries; i++) r.consume(key, config(), 1, m.now);
}

/** Node names of the writers whose figures a delta carries for `key`. */
function figureWriters(m: Mesh, d: Delta | undefined, key: string): string[] {
  const part = d?.keys.find((k) => k.key === key);
  const byInc = new Map(NAMES.map((n) => [m.get(n).incarnation as string, n]));
  return (part?.demand ?? []).map(([ix]) => byInc.get(d?.incarnations[ix] as string) ?? "?").sort();
}

/** Two regions of two, every replica demanding `k` every 5 ms for `steps` flushes. */
function busyMesh(steps: number): Mesh {
  const m = new Mesh(NAMES, SHARE);
  wire(m);
  m.round(1_000);
  for (let step = 0; step < steps; step++) {
    for (const n of NAMES) demand(m, m.get(n), "k", 2);
    m.round(5_000);
  }
  return m;
}

describe("share mode with relays per region", () => {
  it("every replica counts every writer of a key, its own region's and the other's", () => {
    const m = busyMesh(20);
    for (const n of NAMES) {
      const sh = m.get(n).shareOf("k");
      expect(sh?.phase, n).toBe("share");
      // Three other writers: a quarter of the bucket each (a2 counted only a1 before figures were relayed).
      expect(sh?.capShare, n).toBeCloseTo(1 / 4, 9);
      expect(sh?.refillShare, n).toBeGreaterThan(0.15);
      expect(sh?.refillShare, n).toBeLessThan(0.35);
    }
    // Figures are soft state: the replicated state is the same on every replica.
    expect(new Set(NAMES.map((n) => m.get(n).canonical())).size).toBe(1);
  });

  it("relays a figure on its writer's lane: never back, never to a region that hears the writer itself", () => {
    const m = busyMesh(4);
    for (const n of NAMES) demand(m, m.get(n), "k", 2);
    m.now += 5_000;
    for (const n of NAMES) m.get(n).tick(m.now);
    // This flush's figures reach the relays first: a1 holds a2's and b's, b1 holds b2's.
    for (const [from, to] of [
      ["a2", "a1"],
      ["b2", "b1"],
      ["b1", "a1"],
    ] as const)
      expect(m.deliver(m.delta(from, to), to)).toBe(true);
    // The relay of a: to its region peer, its own figure and region b's; to b's relay, its own
    // and a2's (b1's came from b1, and b2 is b1's region, which hears it directly).
    expect(figureWriters(m, m.delta("a1", "a2"), "k")).toEqual(["a1", "b1", "b2"]);
    const toB1 = m.delta("a1", "b1");
    expect(figureWriters(m, toB1, "k")).toEqual(["a1", "a2"]);
    expect(m.deliver(toB1, "b1")).toBe(true);
    expect(figureWriters(m, m.delta("b1", "b2"), "k")).toEqual(["a1", "a2", "b1"]);
    // Not a relay: nothing at all to the other region, and (once its figure is out) nothing new to relay.
    expect(m.delta("a2", "b2")).toBeUndefined();
    expect(figureWriters(m, m.delta("a2", "a1"), "k")).toEqual([]);
  });

  it("a relayed figure makes a part whole even when its header could be left out", () => {
    const m = busyMesh(4);
    for (const n of NAMES) m.get(n).omitHeadersTo(NAMES.find((p) => p !== n && REGION[p] === REGION[n]) as string, true, m.now);
    // Only b2 demands now: a2's header of k is acknowledged, and a1 has only b2's figure to pass on.
    for (let step = 0; step < 3; step++) {
      demand(m, m.get("b2"), "k", 2);
      m.round(5_000);
    }
    demand(m, m.get("b2"), "k", 2);
    m.now += 5_000;
    m.get("b2").tick(m.now);
    m.deliver(m.delta("b2", "b1"), "b1");
    m.deliver(m.delta("b1", "a1"), "a1");
    const d = m.delta("a1", "a2");
    const part = d?.keys.find((k) => k.key === "k");
    expect(part?.headerOmitted).not.toBe(true);
    expect(figureWriters(m, d, "k")).toContain("b2");
    expect(m.deliver(d, "a2")).toBe(true);
  });

  it("relays nothing on the local lane (relay off, one region): each replica sends its own figure", () => {
    const m = new Mesh(["x", "y", "z"], SHARE);
    m.round(1_000);
    for (let step = 0; step < 4; step++) {
      for (const n of ["x", "y", "z"]) demand(m, m.get(n), "k", 2);
      m.round(5_000);
    }
    for (const n of ["x", "y", "z"]) demand(m, m.get(n), "k", 2);
    m.now += 5_000;
    for (const n of ["x", "y", "z"]) m.get(n).tick(m.now);
    m.deliver(m.delta("y", "x"), "x");
    const d = m.delta("x", "z");
    const part = d?.keys.find((k) => k.key === "k");
    expect(part?.demand?.map(([ix]) => d?.incarnations[ix])).toEqual([m.get("x").incarnation]);
  });

  it("relays across a mesh with a link missing (flood lane): the two ends count each other", () => {
    // x and z never reach each other; y floods what it hears (relay on, no regions).
    const m = new Mesh(["x", "y", "z"], { contention: "share" });
    const links: [string, string][] = [
      ["x", "y"],
      ["y", "x"],
      ["y", "z"],
      ["z", "y"],
    ];
    m.round(1_000);
    for (let step = 0; step < 20; step++) {
      demand(m, m.get("x"), "k", 2);
      demand(m, m.get("z"), "k", 2);
      m.now += 5_000;
      for (const n of ["x", "y", "z"]) m.get(n).tick(m.now);
      for (let pass = 0; pass < 3; pass++) for (const [a, b] of links) m.deliver(m.delta(a, b), b);
    }
    for (const n of ["x", "z"]) {
      expect(m.get(n).shareOf("k")?.phase, n).toBe("share");
      expect(m.get(n).shareOf("k")?.capShare, n).toBe(0.5);
    }
  });
});

describe("figures on a part without its header are still refused (hostile input)", () => {
  it("names the field and applies nothing", () => {
    const m = busyMesh(4);
    for (const n of NAMES) demand(m, m.get(n), "k", 2);
    m.now += 5_000;
    m.get("a2").tick(m.now);
    const d = m.delta("a2", "a1");
    if (d === undefined) throw new Error("no delta");
    const bad = viaWire(d);
    const part = bad.keys.find((k) => k.key === "k");
    if (part === undefined || (part.demand?.length ?? 0) === 0) throw new Error("no figure");
    // The same part, its header dropped but its figure kept: what a hostile peer could send.
    Object.assign(part, { limit: undefined, prefix: undefined, known: [], horizonUs: 0, headerOmitted: true });
    const checked = validateDelta(bad, DEFAULT_LIMITS);
    expect(checked.ok).toBe(false);
    if (!checked.ok) expect(checked.error.field).toMatch(/^keys\[\d+\]\.demand$/);
    const before = m.get("a1").canonical();
    const share = m.get("a1").shareOf("k");
    expect(m.get("a1").applyDelta(bad, m.now).ok).toBe(false);
    expect(m.get("a1").canonical()).toBe(before);
    expect(m.get("a1").shareOf("k")).toEqual(share);
  });
});
