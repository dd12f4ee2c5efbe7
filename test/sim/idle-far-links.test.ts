// The idle heartbeat over links with a long round trip (another region: 40 ms each way). An
// idle replica backs off its raises; it stays at one per flush only while a peer is really
// behind. Counting "really behind" in ticks (two flushes, 10 ms) made every idle raise over an
// 80 ms round trip look like a peer falling behind, so the mesh never backed off (measured on
// the scaling bench: ~18% of a core per idle replica at 3 regions x 1, against ~1.3% in one
// region). A peer is now behind when its acks are later than twice the silences its link has
// shown (and for two ticks), so the far links back off like the near ones, and a peer that stops
// answering still brings the pace back.

import { describe, expect, it } from "vitest";
import { Cluster } from "./cluster.ts";

const FLUSH_US = 5_000;

function idleMesh(delayUs: number): Cluster {
  const c = new Cluster({
    seed: 7,
    nodes: [{ name: "a" }, { name: "b" }, { name: "c" }],
    link: { delayUs, jitterUs: 0, loss: 0, duplicate: 0 },
    flushUs: FLUSH_US,
    limit: { capacity: 10, refillTokens: 100, refillPeriodUs: 1_000_000 },
  });
  c.start();
  return c;
}

/** Deltas per second the whole mesh sent between `from` and `to` (virtual time). */
function deltasPerSecond(c: Cluster, from: number, to: number): number {
  c.run(from);
  const before = c.deltasSent;
  c.run(to);
  return (c.deltasSent - before) / ((to - from) / 1e6);
}

describe("idle heartbeat over far links", () => {
  it("backs off over a 40 ms link as over a near one", () => {
    const near = deltasPerSecond(idleMesh(500), 5_000_000, 15_000_000);
    const far = deltasPerSecond(idleMesh(40_000), 5_000_000, 15_000_000);
    // One flush per 5 ms on 6 directed links would be 1,200 deltas/s.
    expect(near).toBeLessThan(60);
    expect(far).toBeLessThan(2 * near + 10);
  });

  it("still keeps the pace while a far peer does not answer, and backs off once it does", () => {
    const c = idleMesh(40_000);
    c.run(5_000_000);
    c.partition([["a", "b"], ["c"]], 5_000_000, 6_000_000);
    const cut = deltasPerSecond(c, 5_300_000, 5_900_000);
    expect(cut).toBeGreaterThan(300); // a and b raise every flush while c leaves data unacknowledged
    const after = deltasPerSecond(c, 10_000_000, 15_000_000);
    expect(after).toBeLessThan(60);
  });
});
