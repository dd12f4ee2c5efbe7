// A lone replica is exactly GCRA (ITU-T I.371): every decision, for random limits, costs and
// arrival times, matches an independent BigInt reference, and so does the level. With slots
// wider than a microsecond, consumption is charged at the slot's start, which can only deny
// more (never admit more) than GCRA; the difference is at most one slot's refill.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { makeKeyConfig, Replica } from "../../src/core/crdt/index.ts";
import { GcraReference } from "../support/gcra.ts";

const RUNS = Number(process.env.LAW_RUNS ?? 150);

const limitArb = fc.record({
  capacity: fc.integer({ min: 1, max: 50 }),
  refillTokens: fc.integer({ min: 1, max: 5_000 }),
  refillPeriodUs: fc.integer({ min: 1, max: 5_000_000 }),
});
const requestsArb = fc.array(fc.record({ dt: fc.nat(200_000), cost: fc.integer({ min: 1, max: 5 }) }), { minLength: 1, maxLength: 300 });

function lone(slotWidthUs: number): Replica {
  return new Replica({ node: "solo", peers: [], nowUs: 0, randomHex: () => "1".repeat(18), slotWidthUs });
}

describe("single replica vs GCRA", () => {
  it("admits exactly what GCRA admits, and reports the same level, with one slot per stamp", () => {
    fc.assert(
      fc.property(limitArb, requestsArb, fc.boolean(), (limit, reqs, tick) => {
        const made = makeKeyConfig(limit);
        if (!made.ok) return;
        const cfg = made.value;
        const r = lone(0);
        const ref = new GcraReference(limit.capacity, limit.refillTokens, limit.refillPeriodUs);
        let t = 1;
        for (const q of reqs) {
          t += q.dt;
          if (tick) r.tick(t); // folding as it goes must not change anything
          const ours = r.consume("k", cfg, q.cost, t).allowed;
          expect(ours).toBe(ref.consume(t, q.cost));
          const [num, den] = ref.level(t);
          const lv = r.level("k", cfg, t).level;
          // Ours is in units (a token = p units): compare lv / p with num / den exactly.
          expect(BigInt(lv) * den).toBe(num * BigInt(cfg.rate.unitsPerToken));
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("with 5 ms slots, stays between the exact level and the exact level plus one slot's refill", () => {
    fc.assert(
      fc.property(limitArb, requestsArb, (limit, reqs) => {
        const made = makeKeyConfig(limit);
        if (!made.ok) return;
        const cfg = made.value;
        const slot = 5_000;
        const r = lone(slot);
        // The exact bucket is fed what we admitted at the true times (debt allowed), in tokens*P.
        const P = BigInt(limit.refillPeriodUs);
        const R = BigInt(limit.refillTokens);
        const cap = BigInt(limit.capacity) * P;
        let exact = cap;
        let at = 1;
        const p = BigInt(cfg.rate.unitsPerToken);
        let t = 1;
        for (const q of reqs) {
          t += Math.floor(q.dt / 50);
          const grown = exact + R * BigInt(t - at);
          exact = grown < cap ? grown : cap;
          at = t;
          const ours = BigInt(r.level("k", cfg, t).level);
          // exact / P <= ours / p <= exact / P + slot * R / P: backdating a charge to its slot's
          // start lends it the refill the real bucket lost to being full within the slot.
          expect(exact * p).toBeLessThanOrEqual(ours * P);
          expect(ours * P).toBeLessThanOrEqual(exact * p + BigInt(slot) * R * p);
          if (r.consume("k", cfg, q.cost, t).allowed) exact -= BigInt(q.cost) * P;
        }
      }),
      { numRuns: RUNS },
    );
  });
});
