// Channels to one or more addresses, with the deadline and retry middlewares, and failover.
//
// Retries are limited to what cannot double-charge. Consume is not idempotent: if a first attempt
// reached the server, resending it takes the tokens twice. So Consume moves to the next address
// only when grpc-js failed the call before it had a connection to send it on (the load balancer's
// pick failed: "No connection established", or the channel was closed before the call started);
// a DEADLINE_EXCEEDED or a connection dropped mid-call may have been processed and is not
// retried. Query takes no token, so it is retried by nice-grpc's retry middleware on UNAVAILABLE
// and fails over on any UNAVAILABLE. Both share one absolute deadline across all attempts.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Channel, ChannelCredentials, type Client, ClientError, createChannel, createClientFactory, Status } from "nice-grpc";
import { type DeadlineOptions, deadlineMiddleware } from "nice-grpc-client-middleware-deadline";
import { type RetryOptions, retryMiddleware } from "nice-grpc-client-middleware-retry";
import type { ConsumeResponse, DecisionSchema, QueryResponse } from "./gen/tokenmesh/v1/rate_limiter_pb.js";
import { type RateLimiterDefinition, rateLimiterDefinition } from "./grpc/service-definition.js";

export type TlsOptions = {
  readonly rootCerts?: Buffer;
  readonly privateKey?: Buffer;
  readonly certChain?: Buffer;
};

export interface TransportOptions {
  readonly addresses: readonly string[];
  readonly tls: boolean | TlsOptions;
  /** Total attempts for one Query on one address, the first included. */
  readonly queryAttempts: number;
  readonly queryRetryBaseDelayMs: number;
}

/** Consume and Query requests share this shape. */
export interface WireRequest {
  readonly decisions: MessageInitShape<typeof DecisionSchema>[];
}

type RateLimiterClient = Client<RateLimiterDefinition, DeadlineOptions & RetryOptions>;

/** True when grpc-js failed the call without ever sending it, so resending cannot double-charge. */
export function neverSent(err: unknown): boolean {
  if (!(err instanceof ClientError) || err.code !== Status.UNAVAILABLE) return false;
  return /No connection established|Channel closed before call started|Name resolution failed/.test(err.details);
}

function credentialsFor(tls: boolean | TlsOptions): ChannelCredentials {
  if (tls === false) return ChannelCredentials.createInsecure();
  if (tls === true) return ChannelCredentials.createSsl();
  return ChannelCredentials.createSsl(tls.rootCerts ?? null, tls.privateKey ?? null, tls.certChain ?? null);
}

export class Transport {
  readonly #channels: Channel[];
  readonly #clients: RateLimiterClient[];
  /** Index of the address that answered last: calls start there (sticky, not load-balanced). */
  #preferred = 0;
  readonly addresses: readonly string[];
  rpcs = 0;
  failovers = 0;

  constructor(options: TransportOptions) {
    this.addresses = options.addresses;
    const credentials = credentialsFor(options.tls);
    // The last middleware added is the outermost: the deadline wraps the retries, so its abort
    // signal also cuts a retry backoff short (nice-grpc-client-middleware-retry README, "Deadlines").
    const factory = createClientFactory().use(retryMiddleware).use(deadlineMiddleware);
    const definition = rateLimiterDefinition();
    this.#channels = options.addresses.map((a) => createChannel(a, credentials));
    this.#clients = this.#channels.map((channel) =>
      factory.create(definition, channel, {
        consume: { retry: false },
        query: {
          retry: true,
          retryMaxAttempts: options.queryAttempts - 1, // the middleware counts retries after the first attempt
          retryBaseDelayMs: options.queryRetryBaseDelayMs,
          retryableStatuses: [Status.UNAVAILABLE],
        },
      }),
    );
  }

  consume(request: WireRequest, deadline: Date): Promise<ConsumeResponse> {
    return this.#withFailover((client) => client.consume(request, { deadline }), neverSent);
  }

  query(request: WireRequest, deadline: Date): Promise<QueryResponse> {
    const unavailable = (err: unknown) => err instanceof ClientError && err.code === Status.UNAVAILABLE;
    return this.#withFailover((client) => client.query(request, { deadline }), unavailable);
  }

  close(): void {
    for (const channel of this.#channels) channel.close();
  }

  async #withFailover<R>(call: (client: RateLimiterClient) => Promise<R>, mayFailOver: (err: unknown) => boolean): Promise<R> {
    const n = this.#clients.length;
    const start = this.#preferred;
    let lastError: unknown;
    for (let attempt = 0; attempt < n; attempt++) {
      const index = (start + attempt) % n;
      const client = this.#clients[index] as RateLimiterClient;
      if (attempt > 0) this.failovers++;
      this.rpcs++;
      try {
        const response = await call(client);
        this.#preferred = index;
        return response;
      } catch (err) {
        if (!mayFailOver(err)) throw err;
        lastError = err;
      }
    }
    throw lastError;
  }
}
