// The hand-written Delta codec against protobuf-es, the reference it replaces: the same bytes out
// for every delta, the same plain object in for every message protobuf-es writes, unknown
// fields and unpacked repeated numbers read like any protobuf reader reads them, and bytes
// that are not a message refused with a WireFormatError rather than any other failure.

import { fromBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type Delta,
  type KeyConfig,
  type KeyDelta,
  type KeyEntriesDelta,
  type UntrustedDelta,
  validateDelta,
} from "../../src/core/crdt/index.ts";
import { MergeRequestSchema } from "../../src/gen/tokenmesh/v1/peer_pb.ts";
import { decodeDelta, encodeDeltaRequest, findDelta, readDeltaRequest, WireFormatError } from "../../src/mesh/delta-wire.ts";
import { encodeMergeRequest } from "../../src/mesh/peer-transport.ts";
import { config, Mesh } from "../crdt/mesh.ts";
import { deltaFromProto, deltaToProto } from "../support/delta-proto.ts";

const MAX = Number.MAX_SAFE_INTEGER;
const unsigned = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: MAX }));
const signed = fc.oneof(fc.constant(0), fc.integer({ min: -300, max: 300 }), fc.integer({ min: -MAX, max: MAX }));
const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 8 }),
  fc.string({ minLength: 120, maxLength: 300 }),
);

// Any numbers, valid limit or not: the codec carries what it is given. Only the fields the
// encoder reads are made.
const limitArb: fc.Arbitrary<KeyConfig> = fc
  .record({ version: unsigned, tEff: signed, capacity: unsigned, refillTokens: unsigned, refillPeriodUs: unsigned })
  .map(({ version, tEff, ...rate }) => ({ version, tEff, rate }) as unknown as KeyConfig);
const pairs = fc.array(fc.tuple(fc.integer({ min: 0, max: 40 }), unsigned), { maxLength: 4 });

// Share mode's demand figures (KeyDelta.demand): triples of unsigned numbers, absent when none.
const demandRows = fc.array(fc.tuple(fc.integer({ min: 0, max: 40 }), unsigned, unsigned), { maxLength: 3 });

const keyArb = (base: number): fc.Arbitrary<KeyDelta> =>
  fc.tuple(keyPartArb(base), demandRows).map(([k, demand]) => (demand.length > 0 ? { ...k, demand } : k));

const keyPartArb = (base: number): fc.Arbitrary<KeyDelta> =>
  fc.record({
    key: text,
    limit: limitArb,
    prefix: fc.record({
      tauUs: signed,
      level: signed,
      limit: limitArb,
      folded: pairs,
      foldedSum: unsigned,
      digest: unsigned,
      lateCharged: unsigned,
      forgiven: unsigned,
    }),
    known: pairs,
    // Slots near the send time, as the core makes them, and anywhere, as a peer may send them.
    entries: fc.array(
      fc.tuple(
        fc.integer({ min: 0, max: 40 }),
        // Relative to the send time the slot must stay a safe integer (the core refuses others).
        fc.oneof(fc.integer({ min: base - 10_000_000, max: base + 5_000 }), fc.integer({ min: -MAX + base, max: MAX })),
        signed,
        signed,
      ),
      { maxLength: 12 },
    ),
    horizonUs: signed,
    partial: fc.boolean(),
  });

// A part without its header (protocol 2): key, entries, partial, header_omitted.
const entriesOnlyArb = (base: number): fc.Arbitrary<KeyEntriesDelta> =>
  fc.record({
    key: text,
    headerOmitted: fc.constant(true as const),
    entries: fc.array(
      fc.tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: base - 10_000_000, max: base + 5_000 }), signed, signed),
      { maxLength: 12 },
    ),
    partial: fc.boolean(),
  });

const deltaArb: fc.Arbitrary<Delta> = fc.integer({ min: 0, max: 2 ** 52 }).chain((sentAt) =>
  fc.record({
    node: fc.constant("peer"),
    incarnation: text,
    fromSeq: unsigned,
    toSeq: unsigned,
    sentAtUs: fc.constant(sentAt),
    horizonUs: signed,
    incarnations: fc.array(text, { maxLength: 4 }),
    records: fc.array(fc.tuple(fc.integer({ min: 0, max: 2 ** 32 - 1 }), signed, signed), { maxLength: 4 }),
    keys: fc.array(fc.oneof(keyArb(sentAt), entriesOnlyArb(sentAt)), { maxLength: 6 }),
  }),
);

const reference = (d: Delta): Uint8Array => encodeMergeRequest({ message: { case: "delta", value: deltaToProto(d) } });

/** What the old path handed the core for these bytes. */
function referenceDecode(bytes: Uint8Array): unknown {
  const m = fromBinary(MergeRequestSchema, bytes).message;
  if (m.case !== "delta") throw new Error("not a delta");
  return deltaFromProto(m.value, "peer");
}

/** What the transport reads (readDeltaRequest), checked against the two-step findDelta + decodeDelta. */
function decode(bytes: Uint8Array): UntrustedDelta {
  const d = readDeltaRequest(bytes);
  if (d === undefined) throw new Error("not a delta");
  const at = findDelta(bytes);
  expect(at === undefined ? undefined : decodeDelta(bytes, at.start, at.end)).toEqual(d);
  d.node = "peer";
  return d;
}

/** Deltas a real 3-replica exchange produces: folds, watermarks, relayed entries, a retirement, parts without their header. */
function protocolDeltas(contention: "share" | "local"): Delta[] {
  const out: Delta[] = [];
  const m = new Mesh(["a", "b", "c"], { retireAfterUs: 50_000, contention });
  // Protocol 2 streams: parts without their header are among them.
  for (const a of ["a", "b", "c"]) for (const b of ["a", "b", "c"]) if (a !== b) m.get(a).omitHeadersTo(b, true, m.now);
  const cfg = config(10, 1000);
  for (let step = 0; step < 60; step++) {
    for (const [i, n] of ["a", "b", "c"].entries()) {
      if (step > 40 && n === "c") continue;
      for (let k = 0; k < 3; k++) m.get(n).consume(`api\u0000key-${(step + i + k) % 7}`, cfg, 1 + k, m.now);
    }
    m.now += 7_000;
    const live = step > 40 ? ["a", "b"] : ["a", "b", "c"]; // then c is gone, and gets retired
    for (const n of live) m.get(n).tick(m.now);
    for (const a of live)
      for (const b of live) {
        if (a === b) continue;
        const d = m.delta(a, b);
        if (d !== undefined) {
          out.push(d);
          m.deliver(d, b);
        }
      }
  }
  return out;
}

describe("delta-wire", () => {
  it("writes the bytes protobuf-es writes, for any delta", () => {
    fc.assert(
      fc.property(deltaArb, (d) => {
        expect(Buffer.from(encodeDeltaRequest(d)).equals(Buffer.from(reference(d)))).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it("reads back what protobuf-es and peer-codec read, for any delta", () => {
    fc.assert(
      fc.property(deltaArb, (d) => {
        const bytes = reference(d);
        expect(decode(bytes)).toEqual(referenceDecode(bytes));
      }),
      { numRuns: 400 },
    );
  });

  it("round-trips the deltas a real exchange makes, and the core accepts them", () => {
    // Share mode: key parts carry their sender's demand figure, and a demanded key's tick marks
    // its header changed, so its parts go whole. Local mode: parts without their header.
    const shared = protocolDeltas("share");
    const local = protocolDeltas("local");
    expect(shared.some((d) => d.keys.some((k) => (k.demand?.length ?? 0) > 0))).toBe(true);
    expect(local.some((d) => d.keys.some((k) => k.headerOmitted === true))).toBe(true);
    const deltas = [...shared, ...local];
    expect(deltas.length).toBeGreaterThan(100);
    expect(deltas.some((d) => d.records.some(([, , retired]) => retired >= 0))).toBe(true);
    for (const d of deltas) {
      const bytes = encodeDeltaRequest(d);
      expect(Buffer.from(bytes).toString("hex")).toBe(Buffer.from(reference(d)).toString("hex"));
      // Decoded, then checked: the Delta that went in (what the validator gives the join).
      const checked = validateDelta(decode(bytes));
      if (!checked.ok) throw new Error(`${checked.error.field}: ${checked.error.message}`);
      expect(checked.value).toEqual({ ...d, node: "peer" });
    }
  });

  it("skips unknown fields and reads unpacked repeated numbers", () => {
    // Hand-made: Delta { sent_at_us: 1000, field 99 (varint 5), keys: [KeyDelta { key "k",
    // known 3 and 4 unpacked, entries packed [0, -1, 0, 2], field 20 (bytes "xy") }] }.
    const key = [0x0a, 1, 0x6b, 0x20, 3, 0x20, 4, 0x2a, 4, 0, 1, 0, 4, 0xa2, 0x01, 2, 0x78, 0x79];
    const delta = [0x20, 0xe8, 0x07, 0x98, 0x06, 5, 0x42, key.length, ...key];
    const bytes = Uint8Array.from([0x12, delta.length, ...delta]);
    const got = decode(bytes);
    expect(got).toEqual(referenceDecode(bytes));
    expect(got).toMatchObject({ sentAtUs: 1000, keys: [{ key: "k", known: [[3, 4]], entries: [[0, 999, 0, 2]] }] });
  });

  it("tells a hello from a delta, and refuses a oneof given twice", () => {
    const hello = encodeMergeRequest({ message: { case: "hello", value: { node: "x" } } });
    expect(findDelta(hello)).toBeUndefined();
    expect(readDeltaRequest(hello)).toBeUndefined();
    const d = reference({
      node: "p",
      incarnation: "i",
      fromSeq: 0,
      toSeq: 1,
      sentAtUs: 5,
      horizonUs: 0,
      incarnations: [],
      records: [],
      keys: [],
    });
    expect(() => findDelta(Uint8Array.from([...d, ...d]))).toThrow(WireFormatError);
    expect(() => readDeltaRequest(Uint8Array.from([...d, ...d]))).toThrow(WireFormatError);
  });

  it("refuses bytes that are not a message with a WireFormatError, and nothing else", () => {
    fc.assert(
      fc.property(
        deltaArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.nat(),
        (d, flips, cut) => {
          const bytes = reference(d);
          for (const [at, v] of flips) bytes[at % bytes.length] = v;
          const damaged = bytes.subarray(0, bytes.length - (cut % 4));
          try {
            decode(damaged);
          } catch (e) {
            if (!(e instanceof WireFormatError) && !(e instanceof Error && e.message === "not a delta")) throw e;
          }
        },
      ),
      { numRuns: 600 },
    );
  });
});
