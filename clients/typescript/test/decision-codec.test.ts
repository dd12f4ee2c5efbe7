// The hand-written codec against protobuf-es, the reference encoding of the same proto: random
// requests must encode to the same bytes as `toBinary`, and random responses (unknown fields and
// replica shares included) must decode to what `fromBinary` reads.

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConsumeRequestSchema, ConsumeResponseSchema } from "../src/gen/tokenmesh/v1/rate_limiter_pb.ts";
import type { BucketRequest } from "../src/types.ts";
import { decodeDecisionResponse, encodeDecisionRequest } from "../src/wire/decision-codec.ts";
import { WireFormatError } from "../src/wire/proto-reader.ts";

const positive = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const bucket: fc.Arbitrary<BucketRequest> = fc.record(
  {
    policy: fc.string({ minLength: 1, maxLength: 40, unit: "grapheme" }),
    key: fc.string({ minLength: 1, maxLength: 300, unit: "grapheme" }),
    cost: fc.integer({ min: 1, max: 0xffff_ffff }),
    limit: fc.record({ capacity: positive, refillTokens: positive, refillPeriodMs: positive }),
  },
  { requiredKeys: ["policy", "key"] },
);
const request = fc.array(fc.array(bucket, { minLength: 1, maxLength: 16 }), { minLength: 1, maxLength: 30 });

const uint64 = fc.bigInt({ min: 0n, max: 2n ** 53n - 1n });
const status = fc.record({
  remaining: uint64,
  retryAfterUs: uint64,
  resetAfterUs: uint64,
  capacity: uint64,
  refillTokens: uint64,
  refillPeriodMs: uint64,
  replicas: fc.array(
    fc.record({ node: fc.string(), incarnation: fc.string(), consumed: uint64, lagUs: uint64, retired: fc.boolean(), local: fc.boolean() }),
    {
      maxLength: 3,
    },
  ),
});
const response = fc.array(fc.record({ allowed: fc.boolean(), retryAfterUs: uint64, buckets: fc.array(status, { maxLength: 16 }) }), {
  maxLength: 30,
});

describe("the client's decision codec", () => {
  it("encodes a request to the bytes protobuf-es writes, framed as one gRPC message", () => {
    fc.assert(
      fc.property(request, (items) => {
        const framed = encodeDecisionRequest(items);
        const reference = toBinary(
          ConsumeRequestSchema,
          create(ConsumeRequestSchema, {
            decisions: items.map((buckets) => ({
              buckets: buckets.map((b) => ({
                policy: b.policy,
                key: b.key,
                ...(b.cost === undefined ? {} : { cost: b.cost }),
                ...(b.limit === undefined
                  ? {}
                  : {
                      limit: {
                        capacity: BigInt(b.limit.capacity),
                        refillTokens: BigInt(b.limit.refillTokens),
                        refillPeriodMs: BigInt(b.limit.refillPeriodMs),
                      },
                    }),
              })),
            })),
          }),
        );
        expect(framed[0]).toBe(0);
        expect(framed.readUInt32BE(1)).toBe(reference.length);
        expect(Buffer.from(framed.subarray(5)).equals(Buffer.from(reference))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("decodes a response as protobuf-es does, skipping the replica shares it does not use", () => {
    fc.assert(
      fc.property(response, (results) => {
        const bytes = toBinary(ConsumeResponseSchema, create(ConsumeResponseSchema, { results }));
        const reference = fromBinary(ConsumeResponseSchema, bytes);
        expect(decodeDecisionResponse(bytes)).toEqual(
          reference.results.map((r) => ({
            allowed: r.allowed,
            retryAfterUs: Number(r.retryAfterUs),
            buckets: r.buckets.map((b) => ({
              remaining: Number(b.remaining),
              retryAfterUs: Number(b.retryAfterUs),
              resetAfterUs: Number(b.resetAfterUs),
              capacity: Number(b.capacity),
              refillTokens: Number(b.refillTokens),
              refillPeriodMs: Number(b.refillPeriodMs),
            })),
          })),
        );
      }),
      { numRuns: 300 },
    );
  });

  it.each([
    ["a truncated sub-message", [0x0a, 0x05, 0x08]],
    ["a varint longer than 10 bytes", [0x08, ...Array(11).fill(0xff)]],
    ["field number 0", [0x00, 0x01]],
    ["a group wire type", [0x0b]],
  ])("refuses %s with a WireFormatError", (_name, bytes) => {
    expect(() => decodeDecisionResponse(Uint8Array.from(bytes))).toThrow(WireFormatError);
  });
});
