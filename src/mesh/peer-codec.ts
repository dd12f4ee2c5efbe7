// Translates the core's plain acks to the Peer protocol's Ack message and back (deltas are
// written and read by hand: delta-wire.ts). An accepting stream answers every delta with an ack,
// so acks are written and read by hand too (encodeAckResponse, readAckResponse), each checked
// against protobuf-es (ackToProto, ackFromProto: the reference, and what the tests compare with).

import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Ack as CoreAck } from "../core/crdt/index.ts";
import type { Ack, AckSchema } from "../gen/tokenmesh/v1/peer_pb.ts";
import { LEN, ProtoReader, StringCache, VARINT, WireFormatError } from "../wire/proto-reader.ts";
import { ProtoWriter } from "../wire/proto-writer.ts";

const num = (v: bigint): number => Number(v);

export function ackToProto(a: CoreAck): MessageInitShape<typeof AckSchema> {
  return {
    incarnation: a.inc,
    peerIncarnation: a.peerInc,
    upToSeq: BigInt(a.upTo),
    sentAtUs: BigInt(a.t1),
    receivedAtUs: BigInt(a.t2),
    missingKeys: [...a.missing],
    gap: a.gap === true,
  };
}

/** A protobuf-es Ack in the core's shape, less the sender (the stream knows it). */
export function ackFromProto(a: Ack): WireAck {
  return {
    kind: "ack",
    inc: a.incarnation,
    peerInc: a.peerIncarnation,
    upTo: num(a.upToSeq),
    t1: num(a.sentAtUs),
    t2: num(a.receivedAtUs),
    missing: a.missingKeys,
    gap: a.gap,
  };
}

/** One writer for every ack of the process (encoding is synchronous; bytes() copies out). */
const ackWriter = new ProtoWriter(4_096);

/**
 * The MergeResponse bytes carrying `a` as its ack (MergeResponse.ack = 2; Ack fields 1-7 in
 * peer.proto), byte for byte what protobuf-es writes for `ackToProto(a)`: fields in number order,
 * zero scalars, empty strings and false left out, the oneof's Ack written even when empty
 * (test/mesh/ack-wire.test.ts compares the two on random acks). Building and serializing the
 * protobuf-es message was ~3% of a lightly loaded mesh replica's CPU (docs/performance.md).
 */
export function encodeAckResponse(a: CoreAck): Uint8Array {
  const w = ackWriter.reset();
  const at = w.begin(2);
  if (a.inc !== "") w.string(1, a.inc);
  if (a.peerInc !== "") w.string(2, a.peerInc);
  w.intField(3, a.upTo);
  w.intField(4, a.t1);
  w.intField(5, a.t2);
  for (const k of a.missing) w.string(6, k);
  w.boolField(7, a.gap === true);
  w.end(at);
  return w.bytes();
}

/** An ack as read off the wire: the core's shape less the sender, which the stream knows. */
export type WireAck = Omit<CoreAck, "node">;

/** A string field, which protobuf-es refuses (throws) unless it is valid UTF-8: so does this. */
function text(r: ProtoReader, cache?: StringCache): string {
  const s = cache === undefined ? r.utf8() : r.cachedUtf8(cache);
  if (s === undefined) throw new WireFormatError("invalid UTF-8 in a string field");
  return s;
}
const NO_KEYS: readonly string[] = [];
/**
 * The incarnation ids acks repeat (each of a replica's peers, and its own), decoded once: room for
 * the peers of a large mesh, as the delta reader's cache has.
 */
const ackIds = new StringCache(32, 64);

/**
 * The ack in a MergeResponse, read from the bytes; undefined for anything this reader does not
 * take on itself (a hello, no oneof set, the ack field twice, which protobuf merges, or a known
 * field with an unexpected wire type): the caller then reads the bytes with protobuf-es, so
 * every such case behaves exactly as before. Throws WireFormatError on truncated bytes, as
 * protobuf-es throws on them, and on a string that is not valid UTF-8, as protobuf-es does.
 */
export function readAckResponse(bytes: Uint8Array): WireAck | undefined {
  const r = new ProtoReader(bytes, 0, bytes.length);
  let ack: WireAck | undefined;
  while (!r.done) {
    const t = r.nextTag();
    if (t !== ((2 << 3) | LEN) || ack !== undefined) {
      if (t >>> 3 === 1 || t >>> 3 === 2) return undefined;
      r.skip(t & 7);
      continue;
    }
    const outer = r.enter();
    let inc = "";
    let peerInc = "";
    let upTo = 0;
    let t1 = 0;
    let t2 = 0;
    let gap = false;
    let missing: string[] | undefined;
    while (!r.done) {
      const f = r.nextTag();
      switch (f) {
        case (1 << 3) | LEN:
          inc = text(r, ackIds);
          break;
        case (2 << 3) | LEN:
          peerInc = text(r, ackIds);
          break;
        case (3 << 3) | VARINT:
          upTo = r.uint();
          break;
        case (4 << 3) | VARINT:
          t1 = r.int();
          break;
        case (5 << 3) | VARINT:
          t2 = r.int();
          break;
        case (6 << 3) | LEN:
          if (missing === undefined) missing = [];
          missing.push(text(r));
          break;
        case (7 << 3) | VARINT:
          gap = r.bool();
          break;
        default:
          if (f >>> 3 <= 7) return undefined;
          r.skip(f & 7);
      }
    }
    r.leave(outer);
    ack = { kind: "ack", inc, peerInc, upTo, t1, t2, missing: missing ?? NO_KEYS, gap };
  }
  return ack;
}
