// The forwarding policy of relays per region (src/core/crdt/forwarding.ts) on real replicas:
// the election, what each lane carries, and that a region's data crosses on the relay pair only.

import { describe, expect, it } from "vitest";
import { type Delta, electRelays, type Lane, regionLanes } from "../../src/core/crdt/index.ts";
import { config, Mesh } from "./mesh.ts";

const REGION: Record<string, string> = { a1: "a", a2: "a", a3: "a", b1: "b", b2: "b" };
const NAMES = Object.keys(REGION);

/** Lanes of every replica with everyone reachable: relays a1 and b1. */
function wire(m: Mesh, reachable: (from: string, to: string) => boolean = () => true): void {
  for (const self of NAMES) {
    const peers = NAMES.filter((p) => p !== self).map((p) => ({ node: p, region: REGION[p] as string, reachable: reachable(self, p) }));
    const relays = electRelays(self, REGION[self] as string, peers);
    for (const [peer, lane] of regionLanes(self, REGION[self] as string, peers, relays)) m.get(self).setLane(peer, lane, m.now);
  }
}

const writers = (d: Delta | undefined): string[] =>
  d === undefined ? [] : [...new Set(d.keys.flatMap((k) => k.entries.map((e) => d.incarnations[e[0]] as string)))].sort();

describe("relay election", () => {
  it("elects the smallest reachable name per region, itself for its own region if smallest", () => {
    const peers = [
      { node: "a2", region: "a", reachable: true },
      { node: "b1", region: "b", reachable: false },
      { node: "b3", region: "b", reachable: true },
      { node: "b2", region: "b", reachable: true },
    ];
    expect(Object.fromEntries(electRelays("a3", "a", peers))).toEqual({ a: "a2", b: "b2" });
    expect(Object.fromEntries(electRelays("a1", "a", peers))).toEqual({ a: "a1", b: "b2" });
  });

  it("gives region peers the region lane, the other region's relay the relay lane from a relay only", () => {
    const peers = [
      { node: "a2", region: "a", reachable: true },
      { node: "b1", region: "b", reachable: true },
      { node: "b2", region: "b", reachable: true },
    ];
    const lanes = (self: string): Record<string, Lane> => Object.fromEntries(regionLanes(self, "a", peers, electRelays(self, "a", peers)));
    expect(lanes("a1")).toEqual({ a2: "region", b1: "relay", b2: "none" });
    expect(lanes("a3")).toEqual({ a2: "region", b1: "none", b2: "none" });
  });
});

describe("what each lane carries", () => {
  it("a region's data crosses once, relay to relay, and the receiving relay passes it on at home", () => {
    const m = new Mesh(NAMES, { relay: false });
    wire(m);
    m.round(1_000);
    const cfg = config();
    m.get("a2").consume("k", cfg, 3, m.now);
    m.now += 10_000;
    for (const n of NAMES) m.get(n).tick(m.now);
    // a2 sends its own change to its region peers, nothing across.
    expect(m.delta("a2", "b1")).toBeUndefined();
    expect(m.delta("a2", "b2")).toBeUndefined();
    m.deliver(m.delta("a2", "a1"), "a1");
    m.deliver(m.delta("a2", "a3"), "a3");
    const a2 = m.get("a2").incarnation;
    // a1 does not relay a2's data inside the region, a3 (not a relay) sends nothing across.
    expect(writers(m.delta("a1", "a3"))).not.toContain(a2);
    expect(m.delta("a3", "b1")).toBeUndefined();
    // The relay pair carries a2's entries and its watermark.
    const across = m.delta("a1", "b1");
    expect(writers(across)).toContain(a2);
    expect(across?.records.some((r) => across.incarnations[r[0]] === a2)).toBe(true);
    m.deliver(across, "b1");
    // b1 passes region a's data on to b2, which never heard from a directly.
    const home = m.delta("b1", "b2");
    expect(writers(home)).toContain(a2);
    m.deliver(home, "b2");
    expect(m.get("b2").consumedBy("k")?.get(a2)).toBe(3);
    // b1 does not send a's data back to a.
    expect(writers(m.delta("b1", "a1"))).not.toContain(a2);
  });

  it("fails over: with a1 unreachable, a2 becomes the relay and sends the whole region's data", () => {
    const m = new Mesh(NAMES, { relay: false });
    wire(m);
    m.round(1_000);
    const cfg = config();
    m.get("a3").consume("k", cfg, 2, m.now);
    m.now += 10_000;
    for (const n of NAMES) m.get(n).tick(m.now);
    m.deliver(m.delta("a3", "a2"), "a2");
    // a1 is gone: everyone re-elects.
    const live = NAMES.filter((n) => n !== "a1");
    wire(m, (_, to) => to !== "a1");
    expect(m.get("a2").laneOf("b1")).toBe("relay");
    expect(m.get("b1").laneOf("a2")).toBe("relay");
    const across = m.delta("a2", "b1");
    expect(writers(across)).toContain(m.get("a3").incarnation);
    m.deliver(across, "b1");
    for (let i = 0; i < 5; i++) m.round(10_000, live);
    const texts = new Set(live.map((n) => m.get(n).canonical()));
    expect(texts.size).toBe(1);
  });

  it("flood and local lanes keep the relay option's behaviour", () => {
    const m = new Mesh(["x", "y", "z"], { relay: true });
    m.round(1_000);
    m.get("x").consume("k", config(), 1, m.now);
    m.now += 10_000;
    m.get("x").tick(m.now);
    m.deliver(m.delta("x", "y"), "y");
    expect(m.get("y").laneOf("z")).toBe("flood");
    expect(writers(m.delta("y", "z"))).toContain(m.get("x").incarnation);
    m.get("y").setLane("z", "local", m.now);
    m.get("y").setLane("x", "local", m.now);
    m.get("y").outboundReopened("z", false, m.now);
    expect(writers(m.delta("y", "z"))).not.toContain(m.get("x").incarnation);
  });
});
