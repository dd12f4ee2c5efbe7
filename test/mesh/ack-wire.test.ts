// The hand-written ack encoder writes exactly what protobuf-es writes for the same ack, and the
// dialer's reader (protobuf-es, then ackFromProto) gets the ack back unchanged.

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Ack } from "../../src/core/crdt/index.ts";
import { MergeResponseSchema } from "../../src/gen/tokenmesh/v1/peer_pb.ts";
import { ackFromProto, ackToProto, encodeAckResponse } from "../../src/mesh/peer-codec.ts";

const text = fc.oneof(fc.constant(""), fc.stringMatching(/^[0-9a-f]{32}$/), fc.string({ unit: "grapheme", maxLength: 200 }));
const ack: fc.Arbitrary<Ack> = fc.record(
  {
    kind: fc.constant("ack" as const),
    node: fc.constant("peer"),
    inc: text,
    peerInc: text,
    upTo: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 1_000 }), fc.maxSafeNat()),
    t1: fc.oneof(fc.constant(0), fc.maxSafeInteger(), fc.integer({ min: 1_700_000_000_000_000, max: 1_900_000_000_000_000 })),
    t2: fc.oneof(fc.constant(0), fc.maxSafeInteger()),
    gap: fc.boolean(),
    missing: fc.array(text, { maxLength: 20 }),
  },
  { requiredKeys: ["kind", "node", "inc", "peerInc", "upTo", "t1", "t2", "missing"] },
);

const viaProtobufEs = (a: Ack): Uint8Array =>
  toBinary(MergeResponseSchema, create(MergeResponseSchema, { message: { case: "ack", value: ackToProto(a) } }));

describe("encodeAckResponse", () => {
  it("writes the bytes protobuf-es writes", () => {
    fc.assert(
      fc.property(ack, (a) => {
        expect(Buffer.from(encodeAckResponse(a)).toString("hex")).toBe(Buffer.from(viaProtobufEs(a)).toString("hex"));
      }),
      { numRuns: 2_000 },
    );
  });

  it("reads back as the same ack", () => {
    fc.assert(
      fc.property(ack, (a) => {
        const m = fromBinary(MergeResponseSchema, encodeAckResponse(a)).message;
        expect(m.case).toBe("ack");
        if (m.case !== "ack") return;
        expect(ackFromProto(m.value, "peer")).toEqual({ ...a, gap: a.gap === true });
      }),
      { numRuns: 500 },
    );
  });

  it("writes an empty ack as an empty Ack in the oneof, and a long one past 127 bytes", () => {
    const empty: Ack = { kind: "ack", node: "p", inc: "", peerInc: "", upTo: 0, t1: 0, t2: 0, missing: [] };
    expect([...encodeAckResponse(empty)]).toEqual([0x12, 0x00]);
    const long: Ack = { ...empty, missing: Array.from({ length: 40 }, (_, i) => `key-${i}`) };
    expect(encodeAckResponse(long)).toEqual(viaProtobufEs(long));
    expect(encodeAckResponse(long).length).toBeGreaterThan(130);
  });
});
