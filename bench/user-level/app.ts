// The user-level bench's application: one Express app, `GET /api` answering a small JSON body,
// keyed on the `x-api-key` header, behind one of the limiters a team would deploy. Each limiter
// is set up the way its own README shows, with a limit no request reaches (1,000 per key per
// second), so every answer is a 200 and the figures compare the cost of asking, not of denying.
//
// Usage: node --import tsx bench/user-level/app.ts SETUP_JSON
//   SETUP_JSON: { "limiter": "none" | "rlf-memory" | "rlf-redis" | "erl-redis" | "tokenmesh",
//                 "redisPort"?: number, "addresses"?: string[] }
// Prints `READY {"port":N}` once it listens on 127.0.0.1. `GET /_stats` answers the tokenmesh
// client's counters (calls and RPCs, so the bench can report decisions per RPC), `{}` otherwise.

import type { AddressInfo } from "node:net";
import express, { type RequestHandler } from "express";
import { rateLimit } from "express-rate-limit";
import { Redis } from "ioredis";
import { type RedisReply, RedisStore } from "rate-limit-redis";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { createLimiter, expressRateLimit, keyFrom } from "../../clients/typescript/src/index.ts";
import { BENCH_POLICY } from "../lib/targets.ts";

export type LimiterName = "none" | "rlf-memory" | "rlf-redis" | "erl-redis" | "tokenmesh";

export interface AppSetup {
  readonly limiter: LimiterName;
  readonly redisPort?: number;
  readonly addresses?: readonly string[];
}

const POINTS = BENCH_POLICY.capacity;
const PER_SECONDS = BENCH_POLICY.refillPeriodMs / 1000;
const apiKey = keyFrom.header("x-api-key");

/** rate-limiter-flexible has no Express middleware of its own: this is its README's pattern. */
function rlfMiddleware(limiter: RateLimiterMemory | RateLimiterRedis): RequestHandler {
  return (req, res, next) => {
    limiter.consume(apiKey(req) ?? req.ip ?? "").then(
      () => next(),
      (rejected: unknown) => {
        if (!(rejected instanceof RateLimiterRes)) return next(rejected);
        res.set("Retry-After", String(Math.ceil(rejected.msBeforeNext / 1000)));
        res.status(429).json({ error: "rate limited" });
      },
    );
  };
}

async function redisClient(port: number | undefined): Promise<Redis> {
  if (port === undefined) throw new TypeError("setup.redisPort is required for the redis limiters");
  const client = new Redis({ host: "127.0.0.1", port, lazyConnect: true, enableOfflineQueue: true });
  await client.connect();
  return client;
}

let clientStats: () => object = () => ({});

async function limiterFor(setup: AppSetup): Promise<RequestHandler | undefined> {
  switch (setup.limiter) {
    case "none":
      return undefined;
    case "rlf-memory":
      return rlfMiddleware(new RateLimiterMemory({ points: POINTS, duration: PER_SECONDS }));
    case "rlf-redis":
      return rlfMiddleware(
        new RateLimiterRedis({ storeClient: await redisClient(setup.redisPort), points: POINTS, duration: PER_SECONDS }),
      );
    case "erl-redis": {
      const client = await redisClient(setup.redisPort);
      return rateLimit({
        windowMs: BENCH_POLICY.refillPeriodMs,
        limit: POINTS,
        standardHeaders: "draft-8",
        legacyHeaders: false,
        keyGenerator: (req) => apiKey(req) ?? "",
        store: new RedisStore({
          sendCommand: (command: string, ...args: string[]) => client.call(command, ...args) as Promise<RedisReply>,
        }),
      });
    }
    case "tokenmesh": {
      const addresses = setup.addresses ?? [];
      if (addresses.length === 0) throw new TypeError("setup.addresses is required for tokenmesh");
      const limiter = createLimiter({ addresses, deadlineMs: 1000 });
      clientStats = () => limiter.stats();
      return expressRateLimit({ limiter, policy: BENCH_POLICY.name, key: apiKey });
    }
    default:
      throw new TypeError(`setup.limiter: unknown limiter ${String(setup.limiter)}`);
  }
}

const setup = JSON.parse(process.argv[2] ?? "{}") as AppSetup;
const app = express();
app.disable("x-powered-by");
app.disable("etag");
const limit = await limiterFor(setup);
app.get("/_stats", (_req, res) => {
  res.json(clientStats());
});
if (limit !== undefined) app.use("/api", limit);
app.get("/api", (_req, res) => {
  res.json({ ok: true });
});
const server = app.listen(0, "127.0.0.1", () => {
  process.stdout.write(`READY ${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
// Exit outright: open store connections would otherwise keep the process alive.
for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => process.exit(0));
