// grpc-js plumbing for the Peer service: its method definition, credentials for mutual TLS (or
// an explicit insecure mode), and a client for dialing. The Peer service uses grpc-js directly
// rather than nice-grpc because the server must read the peer's verified certificate
// (`getAuthContext`), which nice-grpc's call context does not expose.

import { readFileSync } from "node:fs";
import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { ChannelCredentials, Client, ServerCredentials, type ServiceDefinition } from "@grpc/grpc-js";
import type { UntrustedDelta } from "../core/crdt/index.ts";
import {
  type EscrowGrant,
  type EscrowRequest,
  type Hello,
  type MergeRequest,
  MergeRequestSchema,
  MergeResponseSchema,
  Peer,
} from "../gen/tokenmesh/v1/peer_pb.ts";
import { readDeltaRequest } from "./delta-wire.ts";
import { ackFromProto, readAckResponse, type WireAck } from "./peer-codec.ts";

export type MergeRequestInit = MessageInitShape<typeof MergeRequestSchema>;
export type MergeResponseInit = MessageInitShape<typeof MergeResponseSchema>;
/** What an accepting stream writes: a message (the hello) or an already encoded MergeResponse (an ack). */
export type MergeResponseOut = MergeResponseInit | Uint8Array;

const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

export const MERGE_PATH = `/${Peer.typeName}/${Peer.method.merge.name}`;

/** A decoded message with its size on the wire, for per-peer byte counts. */
export interface Sized<T> {
  readonly message: T;
  readonly bytes: number;
}

/**
 * A received MergeRequest's oneof. A delta comes straight from the bytes as the core's
 * UntrustedDelta (delta-wire.ts: protobuf-es objects cost a replica under load half its CPU); a hello,
 * once per stream, goes through protobuf-es.
 */
export type InboundRequest =
  | { readonly case: "hello"; readonly value: Hello }
  | { readonly case: "delta"; readonly value: UntrustedDelta }
  | { readonly case: "escrowRequest"; readonly value: EscrowRequest }
  | { readonly case: "escrowGrant"; readonly value: EscrowGrant }
  | { readonly case: "malformed"; readonly value: string }
  | { readonly case: undefined; readonly value?: undefined };

/**
 * Never throws: bytes that are not a MergeRequest come through as "malformed" with the reason,
 * so the stream handler refuses them with INVALID_ARGUMENT and counts them (a throw here would
 * make grpc-js end the stream with INTERNAL, uncounted).
 */
function decodeRequest(b: Buffer): InboundRequest {
  try {
    const delta = readDeltaRequest(b);
    if (delta !== undefined) return { case: "delta", value: delta };
    const m = fromBinary(MergeRequestSchema, b).message;
    return m.case === "hello" || m.case === "escrowRequest" || m.case === "escrowGrant" ? m : { case: undefined };
  } catch (err) {
    return { case: "malformed", value: (err as Error).message };
  }
}

/**
 * A received MergeResponse's oneof. An ack, one per delta sent, comes straight from the bytes in
 * the core's shape (peer-codec.ts, readAckResponse); a hello, and whatever that reader leaves,
 * goes through protobuf-es. Throws on bytes that are not a MergeResponse, as protobuf-es does:
 * grpc-js then ends the dialing stream, which redials.
 */
export type InboundResponse =
  | { readonly case: "ack"; readonly value: WireAck }
  | { readonly case: "hello"; readonly value: Hello }
  | { readonly case: undefined; readonly value?: undefined };

function decodeResponse(b: Buffer): InboundResponse {
  const ack = readAckResponse(b);
  if (ack !== undefined) return { case: "ack", value: ack };
  const m = fromBinary(MergeResponseSchema, b).message;
  if (m.case === "ack") return { case: "ack", value: ackFromProto(m.value) };
  return m.case === "hello" ? m : { case: undefined };
}

/** Requests are serialized by the caller (so it can count bytes) and sent as raw bytes. */
export const mergeMethod = {
  path: MERGE_PATH,
  requestStream: true,
  responseStream: true,
  requestSerialize: (v: Uint8Array): Buffer => asBuffer(v),
  requestDeserialize: (b: Buffer): Sized<InboundRequest> => ({ message: decodeRequest(b), bytes: b.length }),
  // Acks arrive already encoded (peer-codec.ts, encodeAckResponse); the hello as a message.
  responseSerialize: (v: MergeResponseOut): Buffer =>
    v instanceof Uint8Array ? asBuffer(v) : asBuffer(toBinary(MergeResponseSchema, create(MergeResponseSchema, v))),
  responseDeserialize: (b: Buffer): Sized<InboundResponse> => ({ message: decodeResponse(b), bytes: b.length }),
} as const;

// grpc-js types a method with one type per direction for both ends; ours differ by end (raw
// bytes out, sized messages in), so the definition is handed over untyped.
export const peerServiceDefinition = { merge: mergeMethod } as unknown as ServiceDefinition;

export const encodeMergeRequest = (v: MergeRequestInit): Uint8Array => toBinary(MergeRequestSchema, create(MergeRequestSchema, v));

/** Decoded message types (deserialize returns full messages; serialize accepts init shapes). */
export type { MergeRequest };

export interface TlsFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface PeerCredentials {
  readonly server: ServerCredentials;
  readonly channel: ChannelCredentials;
  readonly secure: boolean;
}

/** Credentials for both ends of the mesh; reads the PEM files once, at start. */
export function peerCredentials(tls: TlsFiles | undefined): PeerCredentials {
  if (tls === undefined) {
    return { server: ServerCredentials.createInsecure(), channel: ChannelCredentials.createInsecure(), secure: false };
  }
  const ca = readFileSync(tls.ca);
  const cert = readFileSync(tls.cert);
  const key = readFileSync(tls.key);
  return {
    // true: a client without a certificate signed by the cluster CA is refused at the TLS layer.
    server: ServerCredentials.createSsl(ca, [{ private_key: key, cert_chain: cert }], true),
    // A peer is dialled at an address from discovery (with mesh.dns, a pod IP no certificate
    // can name), so its identity is not its address: TLS checks the chain to the cluster CA,
    // and the handshake then requires the certificate's common name to be the node its hello
    // names (handshake.ts). Matching the address against the certificate's names would refuse
    // every replica found by DNS.
    channel: ChannelCredentials.createSsl(ca, key, cert, { checkServerIdentity: () => undefined }),
    secure: true,
  };
}

/**
 * How often a peer connection is pinged and how long a ping may go unanswered, from
 * `mesh.retireAfter`. A network cut that closes nothing (no FIN, no RST: a dropped route, a
 * firewall that discards) is seen only by these pings. It must be seen well before peers retire
 * the silent side's writers, because with relays per region another replica takes over as relay
 * only once this link is down: a quarter of retireAfter each, so a silent cut is noticed within
 * half of it. At least 1 s each, so a replica starved of CPU for a moment (a loaded machine, a
 * garbage-collection pause) does not drop healthy links.
 */
export function peerKeepalive(retireAfterUs: number): { readonly timeMs: number; readonly timeoutMs: number } {
  const quarterMs = Math.round(retireAfterUs / 4_000);
  return { timeMs: Math.max(1_000, quarterMs), timeoutMs: Math.max(1_000, quarterMs) };
}

/** A raw grpc-js client for one peer address; `merge()` opens a bidirectional stream. */
export function dialPeer(
  address: string,
  credentials: ChannelCredentials,
  maxMessageBytes: number,
  // The default is what retireAfter's default (5 s) gives; replicas pass their own.
  keepalive: { readonly timeMs: number; readonly timeoutMs: number } = peerKeepalive(5_000_000),
): Client {
  return new Client(address, credentials, {
    "grpc.max_receive_message_length": maxMessageBytes,
    "grpc.max_send_message_length": maxMessageBytes,
    // A separate connection per link: peers are few and each stream should have its own window.
    "grpc.use_local_subchannel_pool": 1,
    "grpc.keepalive_time_ms": keepalive.timeMs,
    "grpc.keepalive_timeout_ms": keepalive.timeoutMs,
    // grpc-js backs off its own reconnects up to 120 s by default; after a partition heals the
    // mesh must be back well within C/r + 1 s, so keep the channel's backoff short too.
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 500,
  });
}
