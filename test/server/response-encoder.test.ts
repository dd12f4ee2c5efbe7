// The hand-written response encoder writes exactly the bytes protobuf-es's reflective encoder
// writes, for random outcomes (including zeros that proto3 omits and values near 2^53).

import { create, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { DecisionOutcome } from "../../src/core/decision.ts";
import { makeRate } from "../../src/core/rate.ts";
import { ConsumeResponseSchema, QueryResponseSchema } from "../../src/gen/tokenmesh/v1/rate_limiter_pb.ts";
import type { BucketTarget } from "../../src/limiter/limiter.ts";
import { encodeDecisionAnswers } from "../../src/server/response-encoder.ts";

const value = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));

const bucketArb = fc
  .record({
    capacity: fc.integer({ min: 1, max: 1_000_000 }),
    refillTokens: fc.integer({ min: 1, max: 1_000_000 }),
    refillPeriodUs: fc.oneof(fc.integer({ min: 1, max: 10_000_000 }), fc.constant(60_000_000)),
    remaining: value,
    retryAfterUs: value,
    resetAfterUs: value,
    shares: fc.array(
      fc.record({
        node: fc.oneof(fc.constant(""), fc.string({ maxLength: 20 }), fc.constant("réplica-ü")),
        incarnation: fc.oneof(fc.constant(""), fc.stringMatching(/^[0-9a-f]{32}$/)),
        consumed: value,
        lagUs: value,
        retired: fc.boolean(),
        local: fc.boolean(),
      }),
      { maxLength: 3 },
    ),
  })
  .map((b) => {
    const made = makeRate(b);
    if (!made.ok) throw new Error(made.error.message);
    const target: BucketTarget = { policy: "p", id: "p\u0000k", rate: made.value, cost: 1 };
    return {
      target,
      report: { rate: made.value, remaining: b.remaining, retryAfterUs: b.retryAfterUs, resetAfterUs: b.resetAfterUs },
      shares: b.shares,
    };
  });

const decisionArb = fc.record({
  allowed: fc.boolean(),
  retryAfterUs: value,
  buckets: fc.array(bucketArb, { minLength: 1, maxLength: 16 }),
});

describe("response encoder", () => {
  it("matches protobuf-es toBinary byte for byte", () => {
    fc.assert(
      fc.property(fc.array(decisionArb, { maxLength: 20 }), fc.boolean(), (ds, withShares) => {
        const decisions = ds.map((d) => d.buckets.map((b) => b.target));
        const outcomes: DecisionOutcome[] = ds.map((d) => ({
          allowed: d.allowed,
          retryAfterUs: d.retryAfterUs,
          buckets: d.buckets.map((b) => b.report),
        }));
        const results = ds.map((d) => ({
          allowed: d.allowed,
          retryAfterUs: BigInt(d.retryAfterUs),
          buckets: d.buckets.map((b) => ({
            remaining: BigInt(b.report.remaining),
            retryAfterUs: BigInt(b.report.retryAfterUs),
            resetAfterUs: BigInt(b.report.resetAfterUs),
            capacity: BigInt(b.target.rate.capacity),
            refillTokens: BigInt(b.target.rate.refillTokens),
            refillPeriodMs: BigInt(Math.ceil(b.target.rate.refillPeriodUs / 1000)),
            replicas: withShares ? b.shares.map((x) => ({ ...x, consumed: BigInt(x.consumed), lagUs: BigInt(x.lagUs) })) : [],
          })),
        }));
        const shares = withShares ? ds.map((d) => d.buckets.map((b) => b.shares)) : undefined;
        const ours = encodeDecisionAnswers({ decisions, outcomes, ...(shares === undefined ? {} : { shares }) });
        expect(ours).toEqual(toBinary(ConsumeResponseSchema, create(ConsumeResponseSchema, { results })));
        expect(ours).toEqual(toBinary(QueryResponseSchema, create(QueryResponseSchema, { results })));
      }),
      { numRuns: 300 },
    );
  });
});
