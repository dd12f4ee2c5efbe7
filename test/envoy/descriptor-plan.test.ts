// The ShouldRateLimit plan on its own (pure): which descriptors share the one all-or-nothing
// decision, which are decided apart, and how two descriptors on one bucket add their hits.

import { describe, expect, it } from "vitest";
import { buildRateLimitDomains, type RateLimitDomains } from "../../src/config/rate-limit-config.ts";
import { decide } from "../../src/core/decision.ts";
import { answerDescriptors, type DescriptorPlan, type DescriptorRequest, planDescriptors } from "../../src/envoy/descriptor-plan.ts";
import { BucketStore } from "../../src/limiter/bucket-store.ts";
import { TokenmeshError } from "../../src/server/errors.ts";

const LIMITS = { maxDescriptorsPerRequest: 64, maxBucketsPerDecision: 16, maxKeyBytes: 256 };

function domains(descriptors: unknown[]): RateLimitDomains {
  const built = buildRateLimitDomains([{ source: "test", raw: { domain: "d", descriptors } }]);
  if (!built.ok) throw new Error(built.error.join("; "));
  return built.value;
}

const d = domains([
  { key: "user", rate_limit: { unit: "minute", requests_per_unit: 3 } },
  { key: "soft", rate_limit: { unit: "minute", requests_per_unit: 1 }, shadow_mode: true },
  { key: "never", rate_limit: { unit: "minute", requests_per_unit: 0 } },
]);

const request = (descriptors: [string, string, number?][], hitsAddend = 0): DescriptorRequest => ({
  domain: "d",
  hitsAddend,
  descriptors: descriptors.map(([key, value, hits]) => ({ entries: [{ key, value }], hitsAddend: hits, limitOverride: false })),
});

function plan(r: DescriptorRequest): DescriptorPlan {
  const p = planDescriptors(r, d, LIMITS);
  if (p instanceof TokenmeshError) throw p;
  return p;
}

/** Runs a plan against one store at one time, as the decision service does. */
function run(store: BucketStore, p: DescriptorPlan, now = 0) {
  const outcomes = p.decisions.map((dec) =>
    dec.targets.length === 0
      ? undefined
      : decide(
          dec.targets.map((t) => store.access(t.id, t.rate, t.cost, now)),
          dec.consume,
        ),
  );
  return answerDescriptors(p, outcomes);
}

describe("planDescriptors", () => {
  it("puts every enforced descriptor in one decision and adds the hits of two on one bucket", () => {
    const p = plan(
      request(
        [
          ["user", "a"],
          ["user", "b"],
          ["user", "a"],
        ],
        1,
      ),
    );
    expect(p.decisions).toHaveLength(1);
    expect(p.decisions[0]?.targets.map((t) => t.cost)).toEqual([2, 1]);
    const store = new BucketStore(100);
    const answer = run(store, p);
    expect(answer.overLimit).toBe(false);
    expect(answer.statuses.map((s) => s.remaining)).toEqual([1, 2, 1]);
  });

  it("takes nothing from any descriptor when one is over limit", () => {
    const store = new BucketStore(100);
    run(store, plan(request([["user", "a"]], 3)));
    const answer = run(
      store,
      plan(
        request([
          ["user", "b"],
          ["user", "a"],
        ]),
      ),
    );
    expect(answer.overLimit).toBe(true);
    expect(answer.statuses.map((s) => [s.overLimit, s.remaining])).toEqual([
      [false, 3],
      [true, 0],
    ]);
    expect(run(store, plan(request([["user", "b"]]))).statuses[0]?.remaining).toBe(2);
  });

  it("decides shadow-mode descriptors apart: they never deny the rest", () => {
    const store = new BucketStore(100);
    const p = plan(
      request(
        [
          ["soft", "x"],
          ["user", "a"],
        ],
        2,
      ),
    );
    expect(p.decisions.map((x) => [x.shadow, x.targets.length])).toEqual([
      [false, 1],
      [true, 1],
    ]);
    const answer = run(store, p);
    expect(answer.overLimit).toBe(false);
    expect(answer.statuses.map((s) => [s.overLimit, s.shadowDenied])).toEqual([
      [false, true],
      [false, false],
    ]);
    expect(answer.statuses[1]?.remaining).toBe(1);
  });

  it("makes a zero limit's request only read the others", () => {
    const p = plan(
      request([
        ["never", "x"],
        ["user", "a"],
      ]),
    );
    expect(p.decisions[0]?.consume).toBe(false);
    const store = new BucketStore(100);
    expect(run(store, p).overLimit).toBe(true);
    expect(run(store, plan(request([["user", "a"]]))).statuses[0]?.remaining).toBe(2);
  });

  it("reads without taking for a descriptor's hits_addend of 0", () => {
    const store = new BucketStore(100);
    const p = plan(request([["user", "a", 0]]));
    expect(p.decisions[1]).toMatchObject({ consume: false, shadow: false });
    expect(run(store, p).statuses[0]).toMatchObject({ overLimit: false, remaining: 3 });
  });

  it("keys buckets by every entry's value, so values that look alike never collide", () => {
    const nested = domains([{ key: "a", descriptors: [{ key: "b", rate_limit: { unit: "second", requests_per_unit: 1 } }] }]);
    const two = (x: string, y: string): DescriptorRequest => ({
      domain: "d",
      hitsAddend: 1,
      descriptors: [
        {
          entries: [
            { key: "a", value: x },
            { key: "b", value: y },
          ],
          hitsAddend: undefined,
          limitOverride: false,
        },
      ],
    });
    const ids = [two("x,y", "z"), two("x", "y,z")].map(
      (r) => (planDescriptors(r, nested, LIMITS) as DescriptorPlan).decisions[0]?.targets[0]?.id,
    );
    expect(ids[0]).not.toBe(ids[1]);
  });
});
