// Counters of the mesh edge, per peer node, read by the metrics collector. Plain numbers on the
// hot path; prom-client reads them when scraped.

export interface PeerCounters {
  deltasSent: number;
  bytesSent: number;
  deltasReceived: number;
  bytesReceived: number;
  acksReceived: number;
}

/**
 * Why a peer stream or connection was cut off. Listed once so the metric exports every reason
 * at 0 from the start: an alert on `increase(...)` needs a series that exists before the first
 * rejection. The last four never reach a hello: a stream silent past mesh.helloTimeout, and
 * connections refused at the port (peer-listener.ts).
 */
export const REJECT_REASONS = [
  "handshake",
  "invalid_delta",
  "invalid_escrow",
  "protocol",
  "key_flood",
  "hello_timeout",
  "not_http2",
  "tls",
  "too_many_connections",
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export class MeshStats {
  readonly peers = new Map<string, PeerCounters>();
  readonly rejected = new Map<RejectReason, number>();
  /** Node name of each peer incarnation seen on an authenticated stream. */
  readonly nodeOfIncarnation = new Map<string, string>();
  /** Peers with an open outbound stream past the handshake. */
  connected = new Set<string>();
  /** Arrival lag of replicated consumption (receiver clock minus the slot stamp), in seconds. */
  readonly lagSamples: number[] = [];

  peer(node: string): PeerCounters {
    let c = this.peers.get(node);
    if (c === undefined) {
      c = { deltasSent: 0, bytesSent: 0, deltasReceived: 0, bytesReceived: 0, acksReceived: 0 };
      this.peers.set(node, c);
    }
    return c;
  }

  reject(reason: RejectReason): void {
    this.rejected.set(reason, (this.rejected.get(reason) ?? 0) + 1);
  }

  /** Keeps a bounded batch of lag samples for the histogram (drained on scrape). */
  lag(seconds: number): void {
    if (this.lagSamples.length < 100_000) this.lagSamples.push(seconds);
  }
}
