// The simulator's wire path: what one replica's deltas and acks become between two processes,
// through the same functions the mesh uses (src/mesh: the hand-written delta codec, the chunking
// by `mesh.maxMessageBytes`, the Merge method's request and response (de)serializers, the ack
// translation). The network then carries these bytes, with their faults; the receiver decodes
// them as a Merge stream would and hands the result to the core, which validates it.

import { create } from "@bufbuild/protobuf";
import type { Ack, Delta, UntrustedDelta } from "../../src/core/crdt/index.ts";
import { HelloSchema } from "../../src/gen/tokenmesh/v1/peer_pb.ts";
import { encodeInChunks, meshChunkLimits } from "../../src/mesh/delta-chunks.ts";
import { encodeDeltaRequest } from "../../src/mesh/delta-wire.ts";
import { checkHello, helloFor, type LocalIdentity, versionViolation } from "../../src/mesh/handshake.ts";
import { encodeAckResponse } from "../../src/mesh/peer-codec.ts";
import { mergeMethod } from "../../src/mesh/peer-transport.ts";

// A view, not a copy: grpc-js hands the deserializers a Buffer over the received bytes.
const asBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** The mesh's default `mesh.maxMessageBytes` (src/config/schema.ts). */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/**
 * The MergeRequest messages a link sends for `d`, in order, as the mesh's outbound link makes
 * them: chunks of at most half the message cap. A chunk still above the cap (one key's state)
 * stops the sequence there, as the mesh does: the core resends from the last ack later.
 */
export function deltaMessages(d: Delta, maxMessageBytes: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const bytes of encodeInChunks(d, meshChunkLimits(maxMessageBytes), encodeDeltaRequest)) {
    if (bytes.length > maxMessageBytes) break;
    out.push(bytes);
  }
  return out;
}

/**
 * The protocol version a stream from `dialer` to `acceptor` runs at, by the mesh's handshake
 * (each side judges the other's hello; the dialer's verdict is what its deltas use).
 */
export function negotiatedVersion(dialer: LocalIdentity, acceptor: LocalIdentity): number {
  const verdict = checkHello(create(HelloSchema, helloFor(acceptor)), dialer, undefined);
  if (!verdict.ok) throw new Error(`sim: ${dialer.node} and ${acceptor.node} do not connect: ${verdict.error.message}`);
  return verdict.value.version;
}

/**
 * A received MergeRequest as the accepting stream of protocol `version` reads it: the delta from
 * `from`, or why the stream refuses it.
 */
export function readDeltaMessage(bytes: Uint8Array, from: string, version: number): UntrustedDelta | string {
  const req = mergeMethod.requestDeserialize(asBuffer(bytes)).message;
  if (req.case === "delta") return versionViolation(req.value.keys, version) ?? { ...req.value, node: from };
  if (req.case === "malformed") return `merge request: not a valid protobuf message: ${req.value}`;
  return `after the hello, a Merge stream carries deltas only (got ${req.case ?? "nothing"})`;
}

/** The MergeResponse bytes an accepting stream writes for `ack`. */
export function ackMessage(ack: Ack): Uint8Array {
  return mergeMethod.responseSerialize(encodeAckResponse(ack));
}

/** A received MergeResponse as the dialing link reads it: the ack from `from`, or undefined. */
export function readAckMessage(bytes: Uint8Array, from: string): Ack | undefined {
  const res = mergeMethod.responseDeserialize(asBuffer(bytes)).message;
  return res.case === "ack" ? { ...res.value, node: from } : undefined;
}
