// The single-replica bucket admits exactly what GCRA admits, and reports the same remaining
// tokens and waits, for random limits (tiny to huge rates), costs and arrival times.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { makeRate } from "../../src/core/rate.ts";
import { BucketStore } from "../../src/limiter/bucket-store.ts";
import { bucketId, Limiter } from "../../src/limiter/limiter.ts";
import { GcraReference } from "../support/gcra.ts";

const limitArb = fc.oneof(
  // everyday limits
  fc.record({
    capacity: fc.integer({ min: 1, max: 1000 }),
    refillTokens: fc.integer({ min: 1, max: 1000 }),
    refillPeriodUs: fc.constantFrom(1_000, 1_000_000, 60_000_000, 3_600_000_000),
  }),
  // extremes: one token a year, a trillion per microsecond, awkward primes
  fc.record({
    capacity: fc.integer({ min: 1, max: 1_000_000_000 }),
    refillTokens: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 1_000_000_000_000 }), fc.constantFrom(7, 13, 999_983)),
    refillPeriodUs: fc.oneof(
      fc.constant(1),
      fc.integer({ min: 1, max: 366 * 24 * 3_600_000_000 }),
      fc.constantFrom(7_000_003, 86_400_000_000),
    ),
  }),
);

const stepsArb = fc.array(
  fc.record({
    gapUs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 1_000 }), fc.integer({ min: 0, max: 10_000_000_000 })),
    // Gaps near the refill boundaries (a fraction of the fill time, then -1/0/+1 microsecond),
    // where an off-by-one in rounding would show.
    nearFill: fc.option(fc.tuple(fc.constantFrom(0.25, 0.5, 1, 1, 1 / 3), fc.integer({ min: -1, max: 1 })), { freq: 2 }),
    costFraction: fc.double({ min: 0, max: 1, noNaN: true }),
    consume: fc.boolean(),
  }),
  { minLength: 1, maxLength: 60 },
);

describe("single-replica bucket against GCRA", () => {
  it("admits, reports remaining, retry-after and reset-after exactly as GCRA", () => {
    fc.assert(
      fc.property(limitArb, stepsArb, fc.integer({ min: 0, max: 2 ** 40 }), (spec, steps, startUs) => {
        const made = makeRate(spec);
        fc.pre(made.ok);
        if (!made.ok) return;
        const rate = made.value;
        const limiter = new Limiter(new BucketStore(10));
        const reference = new GcraReference(spec.capacity, spec.refillTokens, spec.refillPeriodUs);
        let now = startUs;
        for (const step of steps) {
          now += step.nearFill === null ? step.gapUs : Math.max(0, Math.floor(rate.fillTimeUs * step.nearFill[0]) + step.nearFill[1]);
          const cost = Math.max(1, Math.ceil(step.costFraction * spec.capacity));
          const [outcome] = limiter.run([[{ policy: "p", id: bucketId("p", "k"), rate, cost }]], now, step.consume);
          const expected = reference.check(now, cost);
          if (step.consume) reference.consume(now, cost);
          expect(outcome?.allowed).toBe(expected.allowed);
          expect(outcome?.retryAfterUs).toBe(expected.retryAfterUs);
          expect(outcome?.buckets[0]?.remaining).toBe(reference.remaining(now));
          expect(outcome?.buckets[0]?.resetAfterUs).toBe(reference.resetAfterUs(now));
        }
      }),
      { numRuns: 400 },
    );
  });

  it("never admits more than C + r*(t-s) over any interval", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.record({ gapUs: fc.integer({ min: 0, max: 300_000 }), cost: fc.integer({ min: 1, max: 5 }) }), { maxLength: 200 }),
        (capacity, perSecond, steps) => {
          const made = makeRate({ capacity, refillTokens: perSecond, refillPeriodUs: 1_000_000 });
          if (!made.ok) throw new Error(made.error.message);
          const limiter = new Limiter(new BucketStore(1));
          const admitted: { t: number; cost: number }[] = [];
          let now = 0;
          for (const s of steps) {
            now += s.gapUs;
            const cost = Math.min(s.cost, capacity);
            const [o] = limiter.run([[{ policy: "p", id: "k", rate: made.value, cost }]], now, true);
            if (o?.allowed) admitted.push({ t: now, cost });
          }
          // Every window [s, t] between two admissions: sum of costs <= C + r*(t - s).
          for (let i = 0; i < admitted.length; i++) {
            let sum = 0;
            for (let j = i; j < admitted.length; j++) {
              const a = admitted[j] as { t: number; cost: number };
              sum += a.cost;
              const span = a.t - (admitted[i] as { t: number }).t;
              expect(sum).toBeLessThanOrEqual(capacity + (perSecond * span) / 1_000_000);
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
