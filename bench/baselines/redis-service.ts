// Baseline "redis": the same proto on plain grpc-js, deciding in a local redis-server through a
// token-bucket Lua script (EVALSHA, ioredis with auto-pipelining: what a team would deploy).
//
// Usage: node --import tsx redis-service.ts REDIS_PORT POLICIES_JSON
// where POLICIES_JSON maps a policy name to {capacity, refillTokens, refillPeriodMs}.

import { readFileSync } from "node:fs";
import { create, toBinary } from "@bufbuild/protobuf";
import { Redis } from "ioredis";
import { type ConsumeRequest, ConsumeResponseSchema } from "../../src/gen/tokenmesh/v1/rate_limiter_pb.ts";
import { serveBaseline } from "./grpc-common.ts";

interface PolicyLimit {
  capacity: number;
  refillTokens: number;
  refillPeriodMs: number;
}

const [portArg, policiesArg] = process.argv.slice(2);
if (portArg === undefined || policiesArg === undefined) throw new Error("usage: redis-service.ts REDIS_PORT POLICIES_JSON");
const policies = new Map(Object.entries(JSON.parse(policiesArg) as Record<string, PolicyLimit>));
const script = readFileSync(new URL("./token-bucket.lua", import.meta.url), "utf8");
const redis = new Redis({ host: "127.0.0.1", port: Number(portArg), enableAutoPipelining: true, lazyConnect: true });
await redis.connect();
const sha = String(await redis.script("LOAD", script));

type ScriptReply = number[];

async function decide(decision: ConsumeRequest["decisions"][number]): Promise<ScriptReply> {
  const keys: string[] = [];
  const args: number[] = [];
  for (const b of decision.buckets) {
    const limit = policies.get(b.policy);
    if (limit === undefined) throw new Error(`unknown policy ${b.policy}`);
    keys.push(`${b.policy}\u0000${b.key}`);
    args.push(limit.capacity, limit.refillTokens, limit.refillPeriodMs * 1000, b.cost ?? 1);
  }
  return (await redis.evalsha(sha, keys.length, ...keys, ...args)) as ScriptReply;
}

await serveBaseline("redis", async (request, consume) => {
  if (!consume) throw new Error("Query is not implemented by the redis baseline");
  const replies = await Promise.all(request.decisions.map(decide));
  const results = replies.map((r, i) => {
    const buckets = (request.decisions[i] as ConsumeRequest["decisions"][number]).buckets;
    return {
      allowed: r[0] === 1,
      retryAfterUs: BigInt(r[1] ?? 0),
      buckets: buckets.map((b, j) => {
        const limit = policies.get(b.policy) as PolicyLimit;
        return {
          remaining: BigInt(Math.max(0, r[2 + j * 3] ?? 0)),
          retryAfterUs: BigInt(r[3 + j * 3] ?? 0),
          resetAfterUs: BigInt(r[4 + j * 3] ?? 0),
          capacity: BigInt(limit.capacity),
          refillTokens: BigInt(limit.refillTokens),
          refillPeriodMs: BigInt(limit.refillPeriodMs),
        };
      }),
    };
  });
  return toBinary(ConsumeResponseSchema, create(ConsumeResponseSchema, { results }));
});
