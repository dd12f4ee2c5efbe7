// One accepted Merge stream: a peer's deltas in, our acks out. The peer must pass the handshake
// before anything it sends is looked at; every delta is validated by the core before any of it
// is applied, and a bad one ends this stream only (with a status naming the field), counted.

import type { ServerDuplexStream } from "@grpc/grpc-js";
import { status as Status } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { Replica } from "../core/crdt/index.ts";
import type { Clock } from "../server/clock.ts";
import { checkHello, helloFor, type LocalIdentity, type PeerIdentity, peerCertificateName, versionViolation } from "./handshake.ts";
import type { MeshStats, RejectReason } from "./mesh-stats.ts";
import { encodeAckResponse } from "./peer-codec.ts";
import type { InboundRequest, MergeResponseOut, Sized } from "./peer-transport.ts";
import type { RejectionLog } from "./rejection-log.ts";
import { failStream } from "./stream-status.ts";
import type { StrictEscrow } from "./strict-escrow.ts";

export interface InboundDeps {
  readonly replica: Replica;
  readonly local: () => LocalIdentity;
  readonly clock: Clock;
  readonly stats: MeshStats;
  readonly log: Logger;
  readonly secure: boolean;
  /** Called for every key a peer's delta carried (to keep the edge's key bound honest). */
  readonly onKey: (key: string) => void;
  /** Keys one peer may introduce per second (trap 11: a flood of new keys bloats every replica). */
  readonly maxNewKeysPerSecond: number;
  /** A stream that sends no valid hello within this long is closed (it would hold a stream for nothing). */
  readonly helloTimeoutMs: number;
  readonly rejections: RejectionLog;
  /** Tells the flush loop that an applied delta changed what this replica holds. */
  readonly wake: () => void;
  /** Strict mode's requests and grants (absent: such a message is a protocol error). */
  readonly escrow?: StrictEscrow;
}

const CODE = {
  FAILED_PRECONDITION: Status.FAILED_PRECONDITION,
  PERMISSION_DENIED: Status.PERMISSION_DENIED,
  INVALID_ARGUMENT: Status.INVALID_ARGUMENT,
} as const;

export function handleInbound(call: ServerDuplexStream<Sized<InboundRequest>, MergeResponseOut>, deps: InboundDeps): void {
  const { replica, clock, stats, log } = deps;
  let peer: PeerIdentity | undefined;
  let closed = false;
  let windowStart = 0;
  let newKeysInWindow = 0;
  // Reading is paused while the peer does not read our acks, and for one turn after each delta
  // that carried keys: grpc-js hands over every message one socket read decoded in a single
  // turn, so a peer's backlog (a saturated sender's chunks, 1,000 keys each) would otherwise be
  // applied back to back while client calls and the flush timer wait (issue 14: replicas sharing
  // a core were seconds behind and shed their callers). Resumed when neither holds.
  let awaitingDrain = false;
  let yielding = false;
  const resumeIfFree = (): void => {
    if (!awaitingDrain && !yielding && !closed) call.resume();
  };

  const refuse = (code: Status, reason: RejectReason, message: string): void => {
    if (closed) return;
    closed = true;
    clearTimeout(helloTimer);
    stats.reject(reason);
    deps.rejections.report(reason, { peer: peer?.node ?? call.getPeer(), reason, message }, "peer stream refused");
    failStream(call, code, message, reason);
  };
  const helloTimer = setTimeout(() => {
    if (peer === undefined) refuse(Status.DEADLINE_EXCEEDED, "hello_timeout", `no valid hello within ${deps.helloTimeoutMs} ms`);
  }, deps.helloTimeoutMs);
  helloTimer.unref();

  call.on("data", (sized: Sized<InboundRequest>) => {
    if (closed) return;
    const body = sized.message;
    if (body.case === "malformed")
      return refuse(Status.INVALID_ARGUMENT, "invalid_delta", `merge request: not a valid protobuf message: ${body.value}`);
    if (peer === undefined) {
      if (body.case !== "hello")
        return refuse(Status.FAILED_PRECONDITION, "protocol", "the first message of a Merge stream must be a hello");
      const local = deps.local();
      const verdict = checkHello(body.value, local, peerCertificateName(deps.secure, call));
      if (!verdict.ok) return refuse(CODE[verdict.error.code], "handshake", verdict.error.message);
      peer = verdict.value;
      clearTimeout(helloTimer);
      stats.nodeOfIncarnation.set(peer.incarnation, peer.node);
      stats.peer(peer.node);
      call.write({ message: { case: "hello", value: helloFor(local) } });
      log.info({ peer: peer.node, region: peer.region, incarnation: peer.incarnation }, "peer stream accepted");
      return;
    }
    if (body.case === "escrowRequest" || body.case === "escrowGrant") {
      if (deps.escrow === undefined) return refuse(Status.FAILED_PRECONDITION, "protocol", "this replica serves no strict policy");
      const taken = deps.escrow.receive(peer.node, body, clock());
      if (!taken.ok) return refuse(Status.INVALID_ARGUMENT, "invalid_escrow", `${taken.error.field}: ${taken.error.message}`);
      return;
    }
    if (body.case !== "delta") return refuse(Status.FAILED_PRECONDITION, "protocol", "after the hello, a Merge stream carries deltas only");
    const now = clock();
    if (now - windowStart >= 1_000_000) {
      windowStart = now;
      newKeysInWindow = 0;
    }
    // Keys this replica ignores (a removed policy) are skipped, not held: they introduce nothing.
    for (const k of body.value.keys) if (!replica.holdsKey(k.key) && !replica.ignoresKey(k.key)) newKeysInWindow++;
    if (newKeysInWindow > deps.maxNewKeysPerSecond) {
      return refuse(
        Status.RESOURCE_EXHAUSTED,
        "key_flood",
        `delta.keys: peer introduced ${newKeysInWindow} new keys within 1 s, more than mesh.maxNewKeysPerPeerPerSecond (${deps.maxNewKeysPerSecond})`,
      );
    }
    const misfit = versionViolation(body.value.keys, peer.version);
    if (misfit !== undefined) return refuse(Status.INVALID_ARGUMENT, "invalid_delta", `delta.${misfit}`);
    const counters = stats.peer(peer.node);
    counters.deltasReceived++;
    counters.bytesReceived += sized.bytes;
    const before = replica.sequence;
    // The decoded delta is this handler's own object: name its sender in place (no copy).
    body.value.node = peer.node;
    const result = replica.applyDelta(body.value, now);
    // Key parts (held here or not) wait for our watermark: the next flush must raise it.
    if (replica.sequence !== before || body.value.keys.length > 0) deps.wake();
    if (!result.ok) {
      const { field, message } = result.error;
      return refuse(Status.INVALID_ARGUMENT, "invalid_delta", `delta.${field}: ${message}`);
    }
    // A peer renewed after a retirement keeps its stream: learn its new incarnation here.
    const inc = body.value.incarnation;
    if (inc !== "" && !stats.nodeOfIncarnation.has(inc) && stats.nodeOfIncarnation.size < 10_000) {
      stats.nodeOfIncarnation.set(inc, peer.node);
    }
    for (const k of body.value.keys) {
      if (!replica.ignoresKey(k.key)) deps.onKey(k.key);
      // Entries are [incarnation, slot, c0, c1] with absolute slots (stamped by their writers).
      let newest = Number.NEGATIVE_INFINITY;
      for (const e of k.entries) newest = Math.max(newest, e[1] ?? Number.NEGATIVE_INFINITY);
      if (newest !== Number.NEGATIVE_INFINITY) stats.lag(Math.max(0, now - newest) / 1e6);
    }
    if (!call.write(encodeAckResponse(result.value))) {
      // The peer is not reading our acks: stop reading its deltas until it does.
      call.pause();
      if (!awaitingDrain) {
        awaitingDrain = true;
        call.once("drain", () => {
          awaitingDrain = false;
          resumeIfFree();
        });
      }
    }
    if (body.value.keys.length > 0 && !yielding) {
      yielding = true;
      call.pause();
      setImmediate(() => {
        yielding = false;
        resumeIfFree();
      });
    }
  });
  call.on("error", () => {
    closed = true;
    clearTimeout(helloTimer);
  });
  call.on("close", () => clearTimeout(helloTimer));
  call.on("end", () => {
    log.debug({ peer: peer?.node ?? call.getPeer() }, "peer stream ended");
    if (!closed) {
      closed = true;
      call.end();
    }
  });
}
