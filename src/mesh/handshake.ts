// The Hello exchanged at the start of every Merge stream, and the rules that accept or refuse
// a peer: a protocol version both sides speak, the same cluster, a well-formed identity that is
// not our own, and (with TLS) a node name that matches the peer's certificate.

import type { PeerCertificate } from "node:tls";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { isIncarnationId } from "../core/crdt/index.ts";
import type { Result } from "../core/result.ts";
import type { Hello, HelloSchema } from "../gen/tokenmesh/v1/peer_pb.ts";

/**
 * Protocol versions this build speaks. A rolling upgrade keeps one old version in the range.
 *   1  every key part carries its header (limit, prefix, known, horizon)
 *   2  a key part may leave its header out (KeyDelta.header_omitted) when the peer holds it
 */
export const PROTOCOL_VERSIONS = { min: 1, max: 2 } as const;

/** The first version whose streams may carry key parts without their header. */
export const HEADER_OMITTED_SINCE = 2;

/**
 * What a delta from a peer may not carry on a stream of protocol `version`: a part without its
 * header on a version-1 stream (a version-1 build refuses it as a part that lacks its header).
 * Undefined when the delta is fine; otherwise the field and why.
 */
export function versionViolation(keys: readonly { readonly headerOmitted?: boolean }[], version: number): string | undefined {
  if (version >= HEADER_OMITTED_SINCE) return undefined;
  const i = keys.findIndex((k) => k.headerOmitted === true);
  return i < 0 ? undefined : `keys[${i}].header_omitted: set on a protocol ${version} stream (needs ${HEADER_OMITTED_SINCE})`;
}

export interface LocalIdentity {
  readonly cluster: string;
  readonly region: string;
  readonly node: string;
  readonly incarnation: string;
  readonly versions?: { readonly min: number; readonly max: number };
}

export interface PeerIdentity {
  readonly node: string;
  readonly region: string;
  readonly incarnation: string;
  readonly version: number;
}

/** Why a hello is refused: the status the stream ends with, and whether the peer is this replica itself. */
export interface HelloRefusal {
  readonly code: "FAILED_PRECONDITION" | "PERMISSION_DENIED" | "INVALID_ARGUMENT";
  readonly message: string;
  readonly self?: boolean;
}

export type HandshakeResult = Result<PeerIdentity, HelloRefusal>;

function refused(code: HelloRefusal["code"], message: string, self?: true): HandshakeResult {
  return { ok: false, error: self === true ? { code, message, self } : { code, message } };
}

const NODE_NAME = /^[A-Za-z0-9._-]{1,128}$/;

export function helloFor(local: LocalIdentity): MessageInitShape<typeof HelloSchema> {
  const v = local.versions ?? PROTOCOL_VERSIONS;
  return {
    minProtocolVersion: v.min,
    maxProtocolVersion: v.max,
    cluster: local.cluster,
    region: local.region,
    node: local.node,
    incarnation: local.incarnation,
  };
}

/** What either end of a Merge stream (a grpc-js call or stream) tells of its TLS session. */
export interface TlsSession {
  getAuthContext(): { readonly sslPeerCertificate?: PeerCertificate } | null;
}

/**
 * The common name of the peer's verified certificate, as `checkHello` takes it: undefined on an
 * insecure mesh, "" when the certificate names no single CN (node gives an array for several),
 * which no node name matches.
 */
export function peerCertificateName(secure: boolean, session: TlsSession): string | undefined {
  if (!secure) return undefined;
  const cn: unknown = session.getAuthContext()?.sslPeerCertificate?.subject?.CN;
  return typeof cn === "string" ? cn : "";
}

/**
 * Judges a peer's Hello. `certificateName` is the common name of the peer's verified TLS
 * certificate (undefined on an insecure mesh).
 */
export function checkHello(hello: Hello, local: LocalIdentity, certificateName: string | undefined): HandshakeResult {
  const v = local.versions ?? PROTOCOL_VERSIONS;
  const lo = Math.max(v.min, hello.minProtocolVersion);
  const hi = Math.min(v.max, hello.maxProtocolVersion);
  if (hello.minProtocolVersion > hello.maxProtocolVersion || lo > hi) {
    return refused(
      "FAILED_PRECONDITION",
      `hello.protocol_version: peer speaks ${hello.minProtocolVersion}..${hello.maxProtocolVersion}, this replica ${v.min}..${v.max}; upgrade one version at a time`,
    );
  }
  if (hello.cluster !== local.cluster) {
    return refused(
      "PERMISSION_DENIED",
      `hello.cluster: peer is in cluster "${hello.cluster.slice(0, 128)}", this replica in "${local.cluster}"`,
    );
  }
  if (!NODE_NAME.test(hello.node)) return refused("INVALID_ARGUMENT", "hello.node: must be 1-128 of A-Z a-z 0-9 . _ -");
  if (hello.region.length === 0 || hello.region.length > 128) return refused("INVALID_ARGUMENT", "hello.region: must be 1-128 characters");
  if (!isIncarnationId(hello.incarnation)) return refused("INVALID_ARGUMENT", "hello.incarnation: must be 32 hex digits");
  if (certificateName !== undefined && certificateName !== hello.node) {
    return refused(
      "PERMISSION_DENIED",
      `hello.node: "${hello.node}" does not match the peer certificate's common name "${certificateName}"`,
    );
  }
  if (hello.node === local.node) {
    return hello.incarnation === local.incarnation
      ? refused("FAILED_PRECONDITION", `hello.node: "${hello.node}" is this replica (its own address is in the peer list)`, true)
      : refused("FAILED_PRECONDITION", `hello.node: another process also calls itself "${hello.node}"; node names must be unique`);
  }
  return { ok: true, value: { node: hello.node, region: hello.region, incarnation: hello.incarnation, version: hi } };
}
