// createLimiter: one call per decision, with batching, failover, the fail mode and the deny
// cache underneath. A call is checked locally, answered from the deny cache if its bucket was
// just denied, and otherwise joins a batch that goes out as one Consume (or Query) RPC.

import { Status } from "nice-grpc-common";
import { Batcher, type Settled } from "./batcher.js";
import { DenyCache } from "./deny-cache.js";
import { TokenmeshError } from "./errors.js";
import { type LimiterOptions, resolveOptions } from "./options.js";
import { OutageReporter, serviceCouldNotAnswer } from "./outage.js";
import { Transport } from "./transport.js";
import { type BucketRequest, bucketsOf, type Decision, type DecisionRequest, fromWireResult } from "./types.js";
import { checkDecision } from "./validate.js";
import { decodeDecisionResponse, encodeDecisionRequest, type WireResult } from "./wire/decision-codec.js";
import { RpcError } from "./wire/grpc-connection.js";

export interface LimiterStats {
  /** consume() and query() calls made. */
  readonly calls: number;
  /** RPC attempts sent (a failover counts again). */
  readonly rpcs: number;
  readonly failovers: number;
  readonly denyCacheHits: number;
  readonly denyCacheSize: number;
  /** Calls answered by the fail mode because the service could not answer. */
  readonly failOpen: number;
  readonly failClosed: number;
}

export interface Limiter {
  /** Takes `cost` tokens (default 1) from one bucket, or from all of `buckets` or none. */
  consume(request: DecisionRequest): Promise<Decision>;
  /** Answers as consume would, without taking any token (never answered from the deny cache). */
  query(request: DecisionRequest): Promise<Decision>;
  /** Counters for dashboards: read them from a metrics collector. */
  stats(): LimiterStats;
  /** Sends what is queued, waits for the answers, and closes the channels. */
  close(): Promise<void>;
}

type Method = "consume" | "query";
type Item = readonly BucketRequest[];

const BAD_DECISION = /^decisions\[(\d+)\]/;
const SERVER_CAP = /^decisions: must hold 1\.\.(\d+) decisions/;

export function createLimiter(options: LimiterOptions): Limiter {
  const o = resolveOptions(options);
  const transport = new Transport({ addresses: o.addresses, tls: o.tls, queryAttempts: o.queryAttempts, queryRetryBaseDelayMs: 10 });
  const outage = new OutageReporter(o.failMode, o.failClosedRetryAfterMs, o.logger, o.now);
  const denyCache = new DenyCache({ maxEntries: o.denyCacheEntries, now: o.now });
  let calls = 0;
  let closed = false;

  /** `deadlineAt` (`performance.now()` time) counts from when the batch opened: waiting to be sent is part of a call's deadline. */
  async function send(method: Method, items: readonly Item[], deadlineAt: number): Promise<Settled<Decision>[]> {
    let results: WireResult[];
    try {
      const body = encodeDecisionRequest(items);
      const bytes = method === "consume" ? await transport.consume(body, deadlineAt) : await transport.query(body, deadlineAt);
      outage.recovered();
      results = decodeDecisionResponse(bytes);
    } catch (err) {
      return failed(method, items, err, deadlineAt);
    }
    if (results.length !== items.length) {
      const error = new TokenmeshError(Status.INTERNAL, `server answered ${results.length} of ${items.length} decisions`);
      return items.map(() => ({ ok: false, error }));
    }
    return items.map((buckets, i) => ({ ok: true, value: fromWireResult(buckets, results[i] as WireResult) }));
  }

  /** What the callers of a failed batch get: an isolated resend, the fail mode, or the error. */
  function failed(
    method: Method,
    items: readonly Item[],
    err: unknown,
    deadlineAt: number,
  ): Settled<Decision>[] | Promise<Settled<Decision>[]> {
    if (err instanceof RpcError && err.code === Status.INVALID_ARGUMENT && items.length > 1)
      return isolateInvalid(method, items, err, deadlineAt);
    if (serviceCouldNotAnswer(err)) {
      const answer = outage.answer(err, items.length, o.addresses);
      return items.map(() => ({ ok: true, value: answer }));
    }
    const error =
      err instanceof RpcError
        ? new TokenmeshError(err.code, err.details.replace(BAD_DECISION, "decision"), { cause: err })
        : new TokenmeshError(Status.INTERNAL, `the service's answer could not be read: ${String(err)}`, { cause: err });
    return items.map(() => ({ ok: false, error }));
  }

  // The service validates a whole request before touching any bucket, so a refused batch took
  // no token and resending its good decisions cannot double-charge. A batch above the server's
  // cap is resent in chunks it accepts, and later batches are capped to fit. Otherwise the error
  // names the first bad decision: fail that one, resend the rest; if it names none, resend each alone.
  async function isolateInvalid(method: Method, items: readonly Item[], err: RpcError, deadlineAt: number): Promise<Settled<Decision>[]> {
    const cap = Number(SERVER_CAP.exec(err.details)?.[1] ?? 0);
    if (cap >= 1 && cap < items.length) {
      if (batchers[method].maxSize > cap) {
        o.logger.info(
          { serverCap: cap, maxSize: batchers[method].maxSize },
          "the server takes fewer decisions per request; lowering batch.maxSize",
        );
        batchers.consume.lowerMaxSize(cap);
        batchers.query.lowerMaxSize(cap);
      }
      const chunks: Item[][] = [];
      for (let i = 0; i < items.length; i += cap) chunks.push(items.slice(i, i + cap));
      return (await Promise.all(chunks.map((chunk) => send(method, chunk, deadlineAt)))).flat();
    }
    const match = BAD_DECISION.exec(err.details);
    const bad = match === null ? -1 : Number(match[1]);
    if (bad < 0 || bad >= items.length) return (await Promise.all(items.map((item) => send(method, [item], deadlineAt)))).flat();
    const error = new TokenmeshError(err.code, err.details.replace(BAD_DECISION, "decision"), { cause: err });
    const rest = await send(method, [...items.slice(0, bad), ...items.slice(bad + 1)], deadlineAt);
    return [...rest.slice(0, bad), { ok: false, error }, ...rest.slice(bad)];
  }

  const batcher = (method: Method) =>
    new Batcher<Item, Decision>({
      windowMs: o.batch.windowMs,
      maxSize: o.batch.maxSize,
      scheduler: o.scheduler,
      send: (items, openedAt) => send(method, items, openedAt + o.deadlineMs),
    });
  const batchers = { consume: batcher("consume"), query: batcher("query") };

  function admit(request: DecisionRequest): Item {
    if (closed) throw new TokenmeshError(Status.FAILED_PRECONDITION, "the limiter is closed");
    calls++;
    const buckets = bucketsOf(request);
    const problem = checkDecision(buckets);
    if (problem !== undefined) throw problem;
    return buckets;
  }

  return {
    async consume(request) {
      const buckets = admit(request);
      const cached = denyCache.check(buckets);
      if (cached !== undefined) return cached;
      const decision = await batchers.consume.add(buckets);
      if (!decision.allowed && decision.source === "server") denyCache.remember(buckets, decision);
      return decision;
    },
    async query(request) {
      return batchers.query.add(admit(request));
    },
    stats() {
      return {
        calls,
        rpcs: transport.rpcs,
        failovers: transport.failovers,
        denyCacheHits: denyCache.hits,
        denyCacheSize: denyCache.size,
        failOpen: outage.failOpen,
        failClosed: outage.failClosed,
      };
    },
    async close() {
      closed = true;
      await Promise.all([batchers.consume.drain(), batchers.query.drain()]);
      transport.close();
    },
  };
}
