// The hand-written request decoder reads exactly what protobuf-es's `fromBinary` reads, for
// random Consume and Query requests (unicode keys, absent and zero costs, absurd inline limits),
// skips unknown fields at every level, and rejects truncated input.

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConsumeRequestSchema, QueryRequestSchema } from "../../src/gen/tokenmesh/v1/rate_limiter_pb.ts";
import { decodeDecisionRequest } from "../../src/server/request-decoder.ts";

const u64 = fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 1000n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }));

const bucketArb = fc.record(
  {
    policy: fc.string({ maxLength: 10 }),
    key: fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: "grapheme", maxLength: 10 })),
    cost: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    limit: fc.record({ capacity: u64, refillTokens: u64, refillPeriodMs: u64 }),
  },
  { requiredKeys: ["policy", "key"] },
);

const requestArb = fc.record({
  decisions: fc.array(fc.record({ buckets: fc.array(bucketArb, { maxLength: 5 }) }), { maxLength: 8 }),
  includeReplicas: fc.boolean(),
});

/** What fromBinary gives, in the decoder's plain shape. */
function viaProtobufEs(bytes: Uint8Array, query: boolean) {
  const m = query ? fromBinary(QueryRequestSchema, bytes) : fromBinary(ConsumeRequestSchema, bytes);
  return {
    decisions: m.decisions.map((d) => ({
      buckets: d.buckets.map((b) => ({
        policy: b.policy,
        key: b.key,
        cost: b.cost,
        limit:
          b.limit === undefined
            ? undefined
            : { capacity: b.limit.capacity, refillTokens: b.limit.refillTokens, refillPeriodMs: b.limit.refillPeriodMs },
      })),
    })),
    includeReplicas: "includeReplicas" in m ? m.includeReplicas : false,
  };
}

describe("request decoder", () => {
  it("reads what fromBinary reads", () => {
    fc.assert(
      fc.property(requestArb, fc.boolean(), (req, query) => {
        const bytes = query
          ? toBinary(QueryRequestSchema, create(QueryRequestSchema, req))
          : toBinary(ConsumeRequestSchema, create(ConsumeRequestSchema, { decisions: req.decisions }));
        expect(decodeDecisionRequest(bytes)).toEqual(viaProtobufEs(bytes, query));
      }),
      { numRuns: 500 },
    );
  });

  it("skips unknown fields at every level", () => {
    const unknown = [0x78, 0x05, 0x82, 0x01, 0x02, 0x61, 0x62, 0x7d, 1, 2, 3, 4, 0x79, 1, 2, 3, 4, 5, 6, 7, 8]; // fields 15 varint, 16 len, 15 i32, 15 i64
    const limit = [0x08, 0x05, ...unknown, 0x10, 0x01, 0x18, 0xe8, 0x07];
    const bucket = [0x0a, 0x03, ...Buffer.from("api"), ...unknown, 0x12, 0x01, 0x6b, 0x18, 0x02, 0x22, limit.length, ...limit];
    const decision = [0x0a, bucket.length, ...bucket, ...unknown];
    const request = Uint8Array.from([...unknown, 0x0a, decision.length, ...decision, 0x10, 0x01]);
    expect(decodeDecisionRequest(request)).toEqual({
      decisions: [{ buckets: [{ policy: "api", key: "k", cost: 2, limit: { capacity: 5n, refillTokens: 1n, refillPeriodMs: 1000n } }] }],
      includeReplicas: true,
    });
    expect(decodeDecisionRequest(request)).toEqual(viaProtobufEs(request, true));
  });

  it("rejects truncated input", () => {
    const bytes = toBinary(
      ConsumeRequestSchema,
      create(ConsumeRequestSchema, { decisions: [{ buckets: [{ policy: "api", key: "key" }] }] }),
    );
    for (let cut = 1; cut < bytes.length; cut++) expect(() => decodeDecisionRequest(bytes.subarray(0, cut))).toThrow();
  });
});
