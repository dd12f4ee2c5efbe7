// Bounds the connections to the client port: in all, and per client address, so that one client
// opening connections cannot take the server from the others (streams per connection are bounded
// by grpc.max_concurrent_streams). nice-grpc does not expose the listening socket, so the gate
// watches accepted sockets through Node's `net.server.socket` diagnostics channel, which every
// net.Server publishes to, and closes any over the bound on the bound port at once. A refused
// connection is counted and logged (at most once per 10 s with the count since).

import { subscribe, unsubscribe } from "node:diagnostics_channel";
import type { Socket } from "node:net";
import type { Logger } from "pino";

export interface ConnectionLimits {
  readonly maxConnections: number;
  readonly maxConnectionsPerClient: number;
}

export type ConnectionRefusal = "max_connections" | "max_connections_per_client";

const LOG_EVERY_MS = 10_000;

export class ConnectionGate {
  readonly refused: Record<ConnectionRefusal, number> = { max_connections: 0, max_connections_per_client: 0 };
  #open = 0;
  readonly #perClient = new Map<string, number>();
  #lastLog = Number.NEGATIVE_INFINITY;
  #unlogged = 0;
  readonly #listener = (message: unknown): void => this.#accepted((message as { socket: Socket }).socket);

  constructor(
    private readonly port: number,
    private readonly limits: ConnectionLimits,
    private readonly log: Logger,
  ) {}

  get open(): number {
    return this.#open;
  }

  start(): this {
    subscribe("net.server.socket", this.#listener);
    return this;
  }

  stop(): void {
    unsubscribe("net.server.socket", this.#listener);
  }

  #accepted(socket: Socket): void {
    if (socket.localPort !== this.port) return;
    const client = socket.remoteAddress ?? "unknown";
    const mine = this.#perClient.get(client) ?? 0;
    const why: ConnectionRefusal | undefined =
      this.#open >= this.limits.maxConnections
        ? "max_connections"
        : mine >= this.limits.maxConnectionsPerClient
          ? "max_connections_per_client"
          : undefined;
    if (why !== undefined) {
      this.refused[why]++;
      socket.destroy();
      this.#report(why, client);
      return;
    }
    this.#open++;
    this.#perClient.set(client, mine + 1);
    socket.once("close", () => {
      this.#open--;
      const left = (this.#perClient.get(client) ?? 1) - 1;
      if (left <= 0) this.#perClient.delete(client);
      else this.#perClient.set(client, left);
    });
  }

  #report(why: ConnectionRefusal, client: string): void {
    const now = performance.now();
    if (now - this.#lastLog < LOG_EVERY_MS) {
      this.#unlogged++;
      return;
    }
    const limit =
      why === "max_connections"
        ? `limits.maxConnections (${this.limits.maxConnections})`
        : `limits.maxConnectionsPerClient (${this.limits.maxConnectionsPerClient})`;
    this.log.warn({ client, reason: why, refusedSinceLastLog: this.#unlogged + 1 }, `client connection refused: over ${limit}`);
    this.#lastLog = now;
    this.#unlogged = 0;
  }
}
