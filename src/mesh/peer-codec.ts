// Translates the core's plain acks to the Peer protocol's Ack message and back (deltas are
// written and read by hand: delta-wire.ts).

import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Ack as CoreAck } from "../core/crdt/index.ts";
import type { Ack, AckSchema } from "../gen/tokenmesh/v1/peer_pb.ts";

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
