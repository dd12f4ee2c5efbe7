// The hand-written ack codec against protobuf-es: the encoder writes exactly what protobuf-es
// writes for the same ack, and the reader (what a dialing link reads acks with) takes from any
// bytes what protobuf-es takes from them, or leaves them to it, and fails where it fails.

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Ack } from "../../src/core/crdt/index.ts";
import { MergeResponseSchema } from "../../src/gen/tokenmesh/v1/peer_pb.ts";
import { ackFromProto, ackToProto, encodeAckResponse, readAckResponse, type WireAck } from "../../src/mesh/peer-codec.ts";
import { mergeMethod } from "../../src/mesh/peer-transport.ts";

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
        const { node: _, ...wire } = a;
        expect(ackFromProto(m.value)).toEqual({ ...wire, gap: a.gap === true });
        expect(readAckResponse(encodeAckResponse(a))).toEqual({ ...wire, gap: a.gap === true });
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

/** What protobuf-es makes of `bytes` as a MergeResponse: the ack, another case, or the error. */
function reference(bytes: Uint8Array): WireAck | string {
  try {
    const m = fromBinary(MergeResponseSchema, bytes).message;
    return m.case === "ack" ? ackFromProto(m.value) : `case ${m.case}`;
  } catch {
    return "throws";
  }
}

/** What the dialing link's deserializer makes of the same bytes. */
function dialerReads(bytes: Uint8Array): WireAck | string {
  try {
    const m = mergeMethod.responseDeserialize(Buffer.from(bytes)).message;
    return m.case === "ack" ? m.value : `case ${m.case}`;
  } catch {
    return "throws";
  }
}

describe("readAckResponse and the dialer's deserializer", () => {
  it("read what protobuf-es reads from damaged acks (bytes flipped, cut short, or appended), and differ only on bytes no peer writes", () => {
    let disagreed = 0;
    const damaged = fc.tuple(
      ack,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      fc.nat(),
      fc.uint8Array({ maxLength: 12 }),
    );
    fc.assert(
      fc.property(damaged, ([a, flips, cut, tail]) => {
        const good = encodeAckResponse(a);
        const bytes = new Uint8Array([...good.subarray(0, good.length - (cut % 3 === 0 ? cut % good.length : 0)), ...tail]);
        for (const [at, v] of flips) if (bytes.length > 0) bytes[at % bytes.length] = v;
        const mine = dialerReads(bytes);
        const theirs = reference(bytes);
        // Both read an ack: the same one. One refuses what the other reads (protobuf-es lets a
        // varint run past the end of the Ack it is in; it refuses a tag longer than 5 bytes in a
        // field this reader skips): only bytes no honest peer writes, since an honest ack's
        // bytes are exactly what encodeAckResponse writes for it (the first test).
        if ((mine === "throws") !== (theirs === "throws")) {
          const read = mine === "throws" ? theirs : mine;
          if (typeof read !== "string")
            expect(Buffer.from(encodeAckResponse({ ...read, node: "p" })).equals(Buffer.from(bytes))).toBe(false);
          disagreed++;
        } else expect(mine).toEqual(theirs);
      }),
      { numRuns: 3_000 },
    );
    // Most damaged acks are read the same way by both; the disagreements are the exception.
    expect(disagreed).toBeLessThan(300);
  });

  it("leaves a hello, a repeated ack field and a wrong wire type to protobuf-es", () => {
    const a: WireAck = { kind: "ack", inc: "a", peerInc: "b", upTo: 3, t1: 4, t2: 5, missing: [], gap: false };
    const one = encodeAckResponse({ ...a, node: "p" });
    expect(readAckResponse(new Uint8Array([...one, ...one]))).toBeUndefined();
    expect(readAckResponse(new Uint8Array([0x12, 0x02, 0x1a, 0x01]))).toBeUndefined(); // up_to_seq as LEN
    const hello = toBinary(MergeResponseSchema, create(MergeResponseSchema, { message: { case: "hello", value: { node: "n" } } }));
    expect(readAckResponse(hello)).toBeUndefined();
    expect(dialerReads(hello)).toBe("case hello");
    expect(dialerReads(new Uint8Array([...one, ...one]))).toEqual(reference(new Uint8Array([...one, ...one])));
    expect(() => readAckResponse(new Uint8Array([0x12, 0x05, 0x08]))).toThrow();
  });
});
