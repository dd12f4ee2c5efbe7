// Translates the core's plain acks to the Peer protocol's Ack message and back (deltas are
// written and read by hand: delta-wire.ts). An accepting stream answers every delta with an ack,
// so the ack it sends is written by hand too (encodeAckResponse); the dialer reads acks with
// protobuf-es (ackFromProto), one per delta it sent.

import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Ack as CoreAck } from "../core/crdt/index.ts";
import type { Ack, AckSchema } from "../gen/tokenmesh/v1/peer_pb.ts";
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

/** An ack from the peer named `node` (authenticated by the stream), in the core's shape. */
export function ackFromProto(a: Ack, node: string): CoreAck {
  return {
    kind: "ack",
    node,
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
