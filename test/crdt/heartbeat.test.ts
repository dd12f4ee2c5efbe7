// The idle heartbeat (src/core/crdt/heartbeat.ts) on hand-driven replicas: an idle replica's
// watermark rises with doubling gaps up to min(maxIdleHeartbeat, retireAfter / 5), every tick
// again at the first local change or received data, and its peers never retire it meanwhile;
// it does not back off while a peer leaves data unacknowledged or the edge reports a link down.

import { describe, expect, it } from "vitest";
import { config, Mesh } from "./mesh.ts";

const CFG = config();
const FLUSH_US = 5_000;

/** Raw times (since `from`) at which `name`'s own watermark rose over `ticks` flushes of the mesh. */
function raises(m: Mesh, name: string, ticks: number): number[] {
  const me = m.get(name);
  const from = m.now;
  const at: number[] = [];
  for (let i = 0; i < ticks; i++) {
    const before = me.incarnationRecord(me.incarnation)?.wm ?? 0;
    m.round(FLUSH_US);
    if ((me.incarnationRecord(me.incarnation)?.wm ?? 0) > before) at.push(m.now - from);
  }
  return at;
}

const gaps = (at: readonly number[]): number[] => at.slice(1).map((t, i) => t - (at[i] as number));

describe("idle heartbeat", () => {
  it("backs off to min(1 s, retireAfter / 5) when idle, and peers do not retire the idle replicas", () => {
    const m = new Mesh(["a", "b", "c"], { retireAfterUs: 2_000_000 });
    m.round(FLUSH_US);
    const at = raises(m, "a", 2_000); // 10 s idle, five times retireAfter
    const g = gaps(at);
    expect(Math.max(...g)).toBeLessThanOrEqual(400_000 + FLUSH_US); // retireAfter / 5, on the flush grid
    expect(g.slice(-5).every((x) => x >= 400_000)).toBe(true); // backed off all the way
    expect(at.length).toBeLessThan(40); // against 2,000 raises at one per flush
    for (const n of ["a", "b", "c"]) {
      expect(m.get(n).stats.retirementsWritten).toBe(0);
      expect(m.get(n).stats.renewals).toBe(0);
    }
    expect(m.get("a").quietUntil(m.now)).toBeGreaterThan(m.now);
  });

  it("raises every flush again from the first local change, until everything is folded", () => {
    const m = new Mesh(["a", "b"]);
    m.round(FLUSH_US);
    raises(m, "a", 400); // 2 s: backed off
    m.get("a").consume("k", CFG, 3, m.now);
    expect(m.get("a").quietUntil(m.now)).toBeUndefined();
    const b = m.get("b");
    const bFrom = b.incarnationRecord(b.incarnation)?.wm ?? 0;
    const at = raises(m, "a", 3);
    expect(at).toEqual([5_000, 10_000, 15_000]);
    // The peer that received the data raised on those flushes too: the fold needs both watermarks.
    expect(b.incarnationRecord(b.incarnation)?.wm ?? 0).toBeGreaterThanOrEqual(bFrom + 10_000);
    // Once the key is folded everywhere (it is full again after 3 ms of refill), both back off.
    raises(m, "a", 400);
    expect(m.get("a").quietUntil(m.now)).toBeGreaterThan(m.now);
    expect(b.quietUntil(m.now)).toBeGreaterThan(m.now);
    expect(m.get("a").level("k", CFG, m.now).level).toBe(b.level("k", CFG, m.now).level);
  });

  it("the cap is the option when it is below retireAfter / 5", () => {
    const m = new Mesh(["a", "b"], { maxIdleHeartbeatUs: 100_000 });
    m.round(FLUSH_US);
    const g = gaps(raises(m, "a", 400));
    expect(Math.max(...g)).toBeLessThanOrEqual(100_000 + FLUSH_US);
    expect(g.slice(-3).every((x) => x >= 100_000)).toBe(true);
  });

  it("keeps raising every flush while a peer leaves data unacknowledged, and backs off again once it acks", () => {
    const m = new Mesh(["a", "b", "c"]);
    m.round(FLUSH_US);
    raises(m, "a", 400); // 2 s: backed off
    const a = m.get("a");
    // c stops answering: what a sends it is lost, b still gets everything.
    const at: number[] = [];
    const from = m.now;
    for (let i = 0; i < 400; i++) {
      const before = a.incarnationRecord(a.incarnation)?.wm ?? 0;
      m.round(FLUSH_US, ["a", "b"]);
      m.delta("a", "c");
      if ((a.incarnationRecord(a.incarnation)?.wm ?? 0) > before) at.push(m.now - from);
    }
    // Once the first lost delta is two ticks old, every flush raises.
    const first = at[0] as number;
    const pace = at.filter((t) => t >= first + 3 * FLUSH_US);
    expect(pace.length).toBeGreaterThan(300);
    expect(Math.max(...gaps(pace))).toBe(FLUSH_US);
    expect(a.quietUntil(m.now)).toBeUndefined();
    // c answers again (everything is resent and acknowledged): a backs off.
    raises(m, "a", 400);
    expect(a.quietUntil(m.now)).toBeGreaterThan(m.now);
  });

  it("keeps raising every flush while the edge reports a link down", () => {
    const m = new Mesh(["a", "b"]);
    m.round(FLUSH_US);
    raises(m, "a", 400); // 2 s: backed off
    const a = m.get("a");
    a.linkDown(true);
    expect(raises(m, "a", 20)).toEqual(Array.from({ length: 20 }, (_, i) => (i + 1) * FLUSH_US));
    expect(a.quietUntil(m.now)).toBeUndefined();
    a.linkDown(false);
    const g = gaps(raises(m, "a", 800)); // 4 s: doubling from 5 ms reaches 640 ms, then 1 s
    expect(g.slice(-2).every((x) => x >= 640_000)).toBe(true);
  });
});
