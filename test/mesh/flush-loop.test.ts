// The flush loop (src/mesh/flush-loop.ts) on a hand scheduler, driving two real replicas joined
// by an in-process link: it ticks every flush while there is work, sleeps once the core is
// quiet (waking about once per idle heartbeat, not 200 times a second), and a wake puts it back
// on its interval, so a change is sent within one flush.

import { describe, expect, it } from "vitest";
import { DEFAULT_LIMITS, Replica } from "../../src/core/crdt/index.ts";
import { FlushLoop, type FlushTarget } from "../../src/mesh/flush-loop.ts";
import { config } from "../crdt/mesh.ts";
import { HandScheduler } from "../support/hand-scheduler.ts";
import { viaWire } from "../support/via-wire.ts";

const FLUSH_MS = 5;
const CFG = config();

function pair() {
  const timers = new HandScheduler();
  const clock = (): number => 1_000_000 + timers.nowMs * 1000;
  let ids = 0;
  const make = (node: string, peer: string): Replica =>
    new Replica({
      node,
      peers: [peer],
      nowUs: clock(),
      warmupTimeoutUs: 0,
      limits: { ...DEFAULT_LIMITS, policyMax: { capacity: 10, tokensPerSecond: 1000 } },
      randomHex: () => (++ids).toString(16).padStart(18, "0"),
    });
  const a = make("a", "b");
  const b = make("b", "a");
  let sent = 0;
  /** a's link to b: each delta is delivered at once and acknowledged. */
  const link = (from: Replica, to: Replica): FlushTarget => ({
    holdsUnsent: false,
    flush(now) {
      const d = from.deltaFor(to.node, now);
      if (d === undefined) return;
      sent++;
      const r = to.applyDelta(viaWire(d), now);
      if (r.ok) from.applyAck(r.value, now);
    },
  });
  const loop = (from: Replica, to: Replica) =>
    new FlushLoop({ replica: from, links: () => [link(from, to)], clock, scheduler: timers, flushMs: FLUSH_MS });
  const la = loop(a, b);
  const lb = loop(b, a);
  la.start();
  lb.start();
  return { timers, clock, a, b, la, lb, sent: () => sent };
}

describe("flush loop", () => {
  it("sleeps while idle and wakes about once per heartbeat; a wake sends a change within one flush", () => {
    const { timers, clock, a, b, la, lb, sent } = pair();
    timers.advance(2_000); // backs off
    expect(la.asleep && lb.asleep).toBe(true);
    const before = sent();
    const runs = timers.advance(10_000);
    expect(runs).toBeLessThanOrEqual(2 * 12); // about one run per idle heartbeat (1 s) each, not 2 x 2,000
    expect(sent() - before).toBeLessThanOrEqual(2 * 12 * 2);
    expect(a.stats.retirementsWritten + b.stats.retirementsWritten).toBe(0);

    a.consume("k", CFG, 4, clock());
    la.wake();
    expect(la.asleep).toBe(false);
    timers.advance(FLUSH_MS);
    expect(b.level("k", CFG, clock()).level).toBe(a.level("k", CFG, clock()).level);
    expect(b.keyState("k")).toBeDefined();
    // Back to sleep once the key is folded and collected everywhere.
    timers.advance(2_000);
    expect(la.asleep && lb.asleep).toBe(true);
    expect(a.keyState("k")).toBeUndefined();
  });

  it("keeps its interval while a link holds something unsent", () => {
    const timers = new HandScheduler();
    const clock = (): number => 1_000_000 + timers.nowMs * 1000;
    const a = new Replica({ node: "a", peers: [], nowUs: clock(), randomHex: () => "0".repeat(18) });
    const blocked: FlushTarget = { holdsUnsent: true, flush: () => {} };
    const loop = new FlushLoop({ replica: a, links: () => [blocked], clock, scheduler: timers, flushMs: FLUSH_MS });
    loop.start();
    expect(timers.advance(2_000)).toBe(400);
    expect(loop.asleep).toBe(false);
    loop.stop();
    expect(timers.pending()).toEqual([]);
  });
});
