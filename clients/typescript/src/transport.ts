// Connections to one or more addresses, failover between them, and the retries that are safe.
//
// Retries are limited to what cannot double-charge. Consume is not idempotent: if a first attempt
// reached the server, resending it takes the tokens twice. So Consume moves to the next address
// only when the call was never sent (no connection could be established, the connection was
// closed before the call started, or the server refused the stream before processing it); a
// DEADLINE_EXCEEDED or a connection dropped mid-call may have been processed and is not retried.
// Query takes no token, so it is retried on UNAVAILABLE (with a short exponential backoff) and
// fails over on any UNAVAILABLE. All attempts of a call share one absolute deadline.

import { Status } from "nice-grpc-common";
import { GrpcConnection, RpcError, type TlsOptions } from "./wire/grpc-connection.js";

export type { TlsOptions };

export interface TransportOptions {
  readonly addresses: readonly string[];
  readonly tls: boolean | TlsOptions;
  /** Total attempts for one Query on one address, the first included. */
  readonly queryAttempts: number;
  readonly queryRetryBaseDelayMs: number;
}

const CONSUME_PATH = "/tokenmesh.v1.RateLimiter/Consume";
const QUERY_PATH = "/tokenmesh.v1.RateLimiter/Query";

/** True when the call cannot have reached a server, so resending cannot double-charge. */
export function neverSent(err: unknown): boolean {
  return err instanceof RpcError && err.neverSent;
}

const unavailable = (err: unknown): boolean => err instanceof RpcError && err.code === Status.UNAVAILABLE;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class Transport {
  readonly #connections: GrpcConnection[];
  readonly #queryAttempts: number;
  readonly #retryBaseDelayMs: number;
  /** Index of the address that answered last: calls start there (sticky, not load-balanced). */
  #preferred = 0;
  readonly addresses: readonly string[];
  rpcs = 0;
  failovers = 0;

  constructor(options: TransportOptions) {
    this.addresses = options.addresses;
    this.#connections = options.addresses.map((a) => new GrpcConnection(a, options.tls));
    this.#queryAttempts = options.queryAttempts;
    this.#retryBaseDelayMs = options.queryRetryBaseDelayMs;
  }

  /** `body` is a framed ConsumeRequest; `deadlineAt` is `performance.now()` time. */
  consume(body: Buffer, deadlineAt: number): Promise<Buffer> {
    return this.#withFailover((c) => c.unary(CONSUME_PATH, body, deadlineAt), neverSent);
  }

  query(body: Buffer, deadlineAt: number): Promise<Buffer> {
    return this.#withFailover((c) => this.#retried(c, body, deadlineAt), unavailable);
  }

  close(): void {
    for (const c of this.#connections) c.close();
  }

  async #retried(connection: GrpcConnection, body: Buffer, deadlineAt: number): Promise<Buffer> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await connection.unary(QUERY_PATH, body, deadlineAt);
      } catch (err) {
        const delay = this.#retryBaseDelayMs * 2 ** (attempt - 1);
        if (!unavailable(err) || attempt >= this.#queryAttempts || performance.now() + delay >= deadlineAt) throw err;
        await sleep(delay);
      }
    }
  }

  #withFailover(call: (c: GrpcConnection) => Promise<Buffer>, mayFailOver: (err: unknown) => boolean): Promise<Buffer> {
    const start = this.#preferred;
    this.rpcs++;
    const first = this.#connections[start] as GrpcConnection;
    // One address answering is the common case: no async frame of our own around it.
    if (this.#connections.length === 1) return call(first);
    return call(first).then(
      (response) => response,
      (err: unknown) => this.#failOver(call, mayFailOver, start, err),
    );
  }

  async #failOver(
    call: (c: GrpcConnection) => Promise<Buffer>,
    mayFailOver: (err: unknown) => boolean,
    start: number,
    firstError: unknown,
  ): Promise<Buffer> {
    const n = this.#connections.length;
    let lastError = firstError;
    for (let attempt = 1; attempt < n; attempt++) {
      if (!mayFailOver(lastError)) throw lastError;
      const index = (start + attempt) % n;
      this.failovers++;
      this.rpcs++;
      try {
        const response = await call(this.#connections[index] as GrpcConnection);
        this.#preferred = index;
        return response;
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  }
}
