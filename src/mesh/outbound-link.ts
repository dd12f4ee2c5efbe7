// One dialed peer address: opens a Merge stream, says hello, checks the peer's hello, then sends
// this replica's coalesced deltas on every flush and applies the acks that come back. The stream
// respects backpressure (no write while grpc-js buffers, at most `maxInFlight` unacknowledged
// deltas), so a slow peer never grows memory here. A broken stream is redialed with exponential
// backoff and full jitter.

import type { ChannelCredentials, Client, ClientDuplexStream } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { Replica } from "../core/crdt/index.ts";
import type { Clock } from "../server/clock.ts";
import { encodeInChunks, meshChunkLimits } from "./delta-chunks.ts";
import { encodeDeltaRequest } from "./delta-wire.ts";
import { checkHello, HEADER_OMITTED_SINCE, helloFor, type LocalIdentity, type PeerIdentity, peerCertificateName } from "./handshake.ts";
import type { MeshStats } from "./mesh-stats.ts";
import {
  dialPeer,
  encodeMergeRequest,
  type InboundResponse,
  MERGE_PATH,
  type MergeRequestInit,
  mergeMethod,
  type Sized,
} from "./peer-transport.ts";
import { prepareOutboundSession } from "./session-reset.ts";

export interface LinkDeps {
  readonly replica: Replica;
  readonly local: () => LocalIdentity;
  readonly clock: Clock;
  readonly stats: MeshStats;
  readonly log: Logger;
  readonly credentials: ChannelCredentials;
  readonly secure: boolean;
  readonly maxMessageBytes: number;
  /** Pings on the connection that notice a silent network cut (peerKeepalive). */
  readonly keepalive: { readonly timeMs: number; readonly timeoutMs: number };
  readonly maxInFlight: number;
  /** Uniform in [0, 1): jitter for reconnects (injected so tests can fix it). */
  readonly random: () => number;
  readonly backoff: { readonly baseMs: number; readonly maxMs: number };
  /** Incarnation each peer node had when we last streamed to it. */
  readonly lastIncarnation: Map<string, string>;
  /** Tells the flush loop that this link has something to send on the next flush. */
  readonly wake: () => void;
  /** A link connected (past the hello) or went down: relays per region re-elect (relay-router.ts). */
  readonly onPeerChange?: (raw: number) => void;
}

type Stream = ClientDuplexStream<Uint8Array, Sized<InboundResponse>>;

export class OutboundLink {
  #client: Client | undefined;
  #stream: Stream | undefined;
  #peer: PeerIdentity | undefined;
  #inFlight = 0;
  #blocked = false;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** The address turned out to be this replica: never dial it again. */
  isSelf = false;

  constructor(
    readonly address: string,
    private readonly deps: LinkDeps,
  ) {}

  get peer(): PeerIdentity | undefined {
    return this.#peer;
  }

  /**
   * Whether a flush left something unsent on a connected stream (grpc-js buffering, or the
   * in-flight cap reached): the flush loop must not sleep then. A link that is down holds
   * nothing here: its reconnect resends from the last ack.
   */
  get holdsUnsent(): boolean {
    return this.#stream !== undefined && this.#peer !== undefined && (this.#blocked || this.#inFlight >= this.deps.maxInFlight);
  }

  /** Not connected to the peer (dialing, or waiting to redial); never for a link to this replica itself. */
  get down(): boolean {
    return !this.#closed && !this.isSelf && this.#peer === undefined;
  }

  start(): void {
    this.#connect();
  }

  #connect(): void {
    if (this.#closed || this.isSelf) return;
    const { deps } = this;
    this.#client ??= dialPeer(this.address, deps.credentials, deps.maxMessageBytes, deps.keepalive);
    deps.log.debug({ address: this.address, attempt: this.#attempt }, "dialing peer");
    const stream: Stream = this.#client.makeBidiStreamRequest(MERGE_PATH, mergeMethod.requestSerialize, mergeMethod.responseDeserialize);
    this.#stream = stream;
    this.#inFlight = 0;
    this.#blocked = false;
    stream.on("data", (sized: Sized<InboundResponse>) => this.#onData(stream, sized));
    stream.on("error", (err: Error) => this.#onClosed(stream, err.message));
    stream.on("end", () => this.#onClosed(stream, "stream ended"));
    stream.write(encodeMergeRequest({ message: { case: "hello", value: helloFor(deps.local()) } }));
  }

  #onData(stream: Stream, sized: Sized<InboundResponse>): void {
    if (stream !== this.#stream) return;
    const { deps } = this;
    const body = sized.message;
    if (this.#peer === undefined) {
      if (body.case !== "hello") {
        this.#abandon(stream, "the peer's first message was not a hello");
        return;
      }
      const verdict = checkHello(body.value, deps.local(), peerCertificateName(deps.secure, stream));
      if (!verdict.ok) {
        deps.stats.reject("handshake");
        if (verdict.error.self === true) this.isSelf = true;
        this.#abandon(stream, verdict.error.message);
        return;
      }
      const peer = verdict.value;
      this.#peer = peer;
      this.#attempt = 0;
      const now = deps.clock();
      prepareOutboundSession(deps.replica, peer.node, deps.lastIncarnation.get(peer.node) === peer.incarnation, now);
      deps.replica.omitHeadersTo(peer.node, peer.version >= HEADER_OMITTED_SINCE, now);
      deps.lastIncarnation.set(peer.node, peer.incarnation);
      deps.stats.connected.add(peer.node);
      deps.stats.peer(peer.node); // its traffic counters exist (at 0) from the connection on
      deps.log.info({ peer: peer.node, address: this.address, region: peer.region }, "peer connected");
      // Its lane first: the first delta must go on the lane the election gives it.
      deps.onPeerChange?.(now);
      this.flush(now);
      deps.wake();
      return;
    }
    if (body.case !== "ack") {
      this.#abandon(stream, "after the hello, the peer may send acks only");
      return;
    }
    const counters = deps.stats.peer(this.#peer.node);
    counters.acksReceived++;
    counters.bytesReceived += sized.bytes;
    this.#inFlight = Math.max(0, this.#inFlight - 1);
    const before = deps.replica.sequence;
    deps.replica.applyAck({ ...body.value, node: this.#peer.node }, deps.clock());
    // An ack that asked for keys again (or made this replica ready) changed what peers lack.
    if (deps.replica.sequence !== before) deps.wake();
  }

  /** Sends the next delta if the stream can take it. Called on every flush tick. */
  flush(now: number): void {
    const stream = this.#stream;
    const peer = this.#peer;
    if (stream === undefined || peer === undefined || this.#blocked || this.#inFlight >= this.deps.maxInFlight) return;
    const delta = this.deps.replica.deltaFor(peer.node, now);
    if (delta === undefined) return;
    const chunks = encodeInChunks(delta, meshChunkLimits(this.deps.maxMessageBytes), encodeDeltaRequest);
    const counters = this.deps.stats.peer(peer.node);
    for (const bytes of chunks) {
      if (bytes.length > this.deps.maxMessageBytes) {
        // A single key's state above the cap (the core bounds entries per key, so only a tiny
        // cap gets here): stop before the final chunk, whose watermarks would claim data the
        // peer lacks. The core resends from the last ack later; say so loudly meanwhile.
        this.deps.log.error(
          { peer: peer.node, bytes: bytes.length, limit: this.deps.maxMessageBytes },
          "one key's delta exceeds mesh.maxMessageBytes: not sent",
        );
        break;
      }
      counters.deltasSent++;
      counters.bytesSent += bytes.length;
      this.#inFlight++;
      if (!stream.write(bytes)) this.#blocked = true;
    }
    if (this.#blocked) {
      stream.once("drain", () => {
        this.#blocked = false;
        this.deps.wake();
      });
    }
  }

  /**
   * Sends one strict-mode message (a request or a grant) if the stream is up and not blocked;
   * returns whether it went. Never queued: the next flush sends a fresh one.
   */
  sendEscrow(message: MergeRequestInit): boolean {
    const stream = this.#stream;
    if (stream === undefined || this.#peer === undefined || this.#blocked) return false;
    const bytes = encodeMergeRequest(message);
    this.deps.stats.peer(this.#peer.node).bytesSent += bytes.length;
    if (!stream.write(bytes)) this.#blocked = true;
    return true;
  }

  #abandon(stream: Stream, reason: string): void {
    this.deps.log.warn({ address: this.address, reason }, "peer link dropped");
    stream.cancel();
    this.#onClosed(stream, reason);
  }

  #onClosed(stream: Stream, reason: string): void {
    if (stream !== this.#stream) return;
    this.#stream = undefined;
    if (this.#peer !== undefined) {
      this.deps.stats.connected.delete(this.#peer.node);
      // Losing a connected peer is what an operator must see; our own shutdown is not.
      if (this.#closed) this.deps.log.debug({ peer: this.#peer.node, reason }, "peer link closed");
      else this.deps.log.warn({ peer: this.#peer.node, address: this.address, reason }, "peer lost");
    }
    const hadPeer = this.#peer !== undefined;
    this.#peer = undefined;
    if (hadPeer) this.deps.onPeerChange?.(this.deps.clock());
    if (this.#closed || this.isSelf) return;
    const { baseMs, maxMs } = this.deps.backoff;
    const cap = Math.min(maxMs, baseMs * 2 ** Math.min(this.#attempt, 16));
    this.#attempt++;
    const delayMs = Math.max(baseMs / 2, this.deps.random() * cap);
    this.deps.log.debug({ address: this.address, reason, attempt: this.#attempt, delayMs: Math.round(delayMs) }, "peer redial scheduled");
    this.#timer = setTimeout(() => this.#connect(), delayMs);
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#stream?.cancel();
    this.#client?.close();
  }
}
