// Every bad input gets a gRPC error naming the field and the limit, changes no state, and leaves
// the server serving. Table-driven over a real server on loopback.

import { ClientError, Status } from "nice-grpc";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RateLimiterClient, startTestServer, type TestServer } from "../support/server.ts";

type Request = Parameters<RateLimiterClient["consume"]>[0];

const ok = { policy: "api", key: "alice" };
const one = (bucket: Record<string, unknown>): Request => ({ decisions: [{ buckets: [bucket] }] });

const cases: { name: string; request: Request; code: Status; message: RegExp }[] = [
  { name: "empty request", request: {}, code: Status.INVALID_ARGUMENT, message: /^decisions: must hold 1\.\.1000 decisions, got 0$/ },
  {
    name: "more decisions than the cap",
    request: { decisions: Array.from({ length: 1001 }, () => ({ buckets: [ok] })) },
    code: Status.INVALID_ARGUMENT,
    message: /^decisions: must hold 1\.\.1000 decisions, got 1001$/,
  },
  {
    name: "no buckets",
    request: { decisions: [{ buckets: [] }] },
    code: Status.INVALID_ARGUMENT,
    message: /^decisions\[0\]\.buckets: must hold 1\.\.16 buckets, got 0$/,
  },
  {
    name: "more than 16 buckets",
    request: { decisions: [{ buckets: Array.from({ length: 17 }, (_, i) => ({ policy: "api", key: `k${i}` })) }] },
    code: Status.INVALID_ARGUMENT,
    message: /^decisions\[0\]\.buckets: must hold 1\.\.16 buckets, got 17$/,
  },
  {
    name: "empty key",
    request: one({ policy: "api", key: "" }),
    code: Status.INVALID_ARGUMENT,
    message: /^decisions\[0\]\.buckets\[0\]\.key: must be 1\.\.256 bytes of UTF-8, got 0$/,
  },
  {
    name: "over-long key (bytes, not characters)",
    request: one({ policy: "api", key: "é".repeat(129) }),
    code: Status.INVALID_ARGUMENT,
    message: /^decisions\[0\]\.buckets\[0\]\.key: must be 1\.\.256 bytes of UTF-8, got 258$/,
  },
  {
    name: "empty policy",
    request: one({ policy: "", key: "a" }),
    code: Status.INVALID_ARGUMENT,
    message: /^decisions\[0\]\.buckets\[0\]\.policy: is required$/,
  },
  {
    name: "unknown policy",
    request: one({ policy: "nope", key: "a" }),
    code: Status.INVALID_ARGUMENT,
    message: /^decisions\[0\]\.buckets\[0\]\.policy: unknown policy "nope" \(known: api, custom\)$/,
  },
  {
    name: "cost 0",
    request: one({ ...ok, cost: 0 }),
    code: Status.INVALID_ARGUMENT,
    message: /^decisions\[0\]\.buckets\[0\]\.cost: must be at least 1/,
  },
  {
    name: "cost above capacity",
    request: one({ ...ok, cost: 11 }),
    code: Status.INVALID_ARGUMENT,
    message: /^decisions\[0\]\.buckets\[0\]\.cost: 11 exceeds the bucket's capacity of 10/,
  },
  {
    name: "inline limit where not allowed",
    request: one({ ...ok, limit: { capacity: 5n, refillTokens: 1n, refillPeriodMs: 1000n } }),
    code: Status.INVALID_ARGUMENT,
    message: /^decisions\[0\]\.buckets\[0\]\.limit: policy "api" does not accept inline limits/,
  },
  {
    name: "inline limit with zero capacity",
    request: one({ policy: "custom", key: "a", limit: { capacity: 0n, refillTokens: 1n, refillPeriodMs: 1000n } }),
    code: Status.INVALID_ARGUMENT,
    message: /^decisions\[0\]\.buckets\[0\]\.limit\.capacity: must be 1\.\.1000 for policy "custom", got 0$/,
  },
  {
    name: "inline limit with absurd capacity",
    request: one({ policy: "custom", key: "a", limit: { capacity: 2n ** 63n, refillTokens: 1n, refillPeriodMs: 1000n } }),
    code: Status.INVALID_ARGUMENT,
    message: /^decisions\[0\]\.buckets\[0\]\.limit\.capacity: must be 1\.\.1000 for policy "custom", got 9223372036854775808$/,
  },
  {
    name: "inline limit with zero refill",
    request: one({ policy: "custom", key: "a", limit: { capacity: 5n, refillTokens: 0n, refillPeriodMs: 1000n } }),
    code: Status.INVALID_ARGUMENT,
    message: /^decisions\[0\]\.buckets\[0\]\.limit\.refill_tokens: must be 1\.\.1000000000000, got 0$/,
  },
  {
    name: "inline limit with zero period",
    request: one({ policy: "custom", key: "a", limit: { capacity: 5n, refillTokens: 1n, refillPeriodMs: 0n } }),
    code: Status.INVALID_ARGUMENT,
    message: /^decisions\[0\]\.buckets\[0\]\.limit\.refill_period_ms: must be 1\.\.31622400000 \(one year\), got 0$/,
  },
  {
    name: "inline limit refilling faster than allowed",
    request: one({ policy: "custom", key: "a", limit: { capacity: 5n, refillTokens: 1_000_000n, refillPeriodMs: 1n } }),
    code: Status.INVALID_ARGUMENT,
    message:
      /^decisions\[0\]\.buckets\[0\]\.limit\.refill_tokens: refill of 1000000000 tokens\/s exceeds the policy's limit of 100 tokens\/s$/,
  },
  {
    name: "the same bucket twice in one decision",
    request: { decisions: [{ buckets: [ok, ok] }] },
    code: Status.INVALID_ARGUMENT,
    message: /^decisions\[0\]\.buckets\[1\]: names the same bucket as buckets\[0\]/,
  },
  {
    name: "a good decision before a bad one (nothing is applied)",
    request: { decisions: [{ buckets: [ok] }, { buckets: [{ policy: "api", key: "" }] }] },
    code: Status.INVALID_ARGUMENT,
    message: /^decisions\[1\]\.buckets\[0\]\.key: must be 1\.\.256 bytes/,
  },
  {
    name: "oversized message",
    request: { decisions: Array.from({ length: 400 }, (_, i) => ({ buckets: [{ policy: "api", key: `${i}-${"x".repeat(200)}` }] })) },
    code: Status.RESOURCE_EXHAUSTED,
    message: /^Received message larger than max \(\d+ vs 65536\)$/,
  },
];

describe("bytes that are not a request", () => {
  it("get INVALID_ARGUMENT naming the problem, and the server keeps serving", async () => {
    const t = await startTestServer({ policies: { api: { capacity: 10, refill: 1, per: "1s" } } });
    try {
      // A raw grpc-js call sending a truncated message: field 1, length 100, then nothing.
      const { Client, credentials } = await import("@grpc/grpc-js");
      const raw = new Client(`127.0.0.1:${t.server.port}`, credentials.createInsecure());
      const status = await new Promise<{ code: number; details: string }>((resolve) => {
        raw.makeUnaryRequest(
          "/tokenmesh.v1.RateLimiter/Consume",
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.from([0x0a, 0x64]),
          (err) => resolve({ code: err?.code ?? 0, details: err?.details ?? "" }),
        );
      });
      raw.close();
      expect(status).toEqual({ code: Status.INVALID_ARGUMENT, details: "request: not a valid protobuf message: premature end of input" });
      const ok = await t.client.consume({ decisions: [{ buckets: [{ policy: "api", key: "after" }] }] });
      expect(ok.results[0]?.allowed).toBe(true);
    } finally {
      await t.close();
    }
  });
});

describe("bad input over a real server", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      limits: { maxMessageBytes: 65536 },
      policies: {
        api: { capacity: 10, refill: 1, per: "1s" },
        custom: { capacity: 10, refill: 1, per: "1s", inline: { maxCapacity: 1000, maxRefillPerSecond: 100 } },
      },
    });
  });
  afterAll(async () => {
    await t.close();
  });

  it.each(cases)("$name → $code", async ({ request, code, message }) => {
    for (const method of ["consume", "query"] as const) {
      const call = method === "consume" ? t.client.consume(request) : t.client.query({ decisions: request.decisions ?? [] });
      const error = await call.then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(ClientError);
      expect((error as ClientError).code).toBe(code);
      expect((error as ClientError).details).toMatch(message);
    }
    // No state changed and the server still serves: alice's bucket is untouched and full.
    expect(t.server.limiter.store.size).toBe(0);
    const check = await t.client.query({ decisions: [{ buckets: [ok] }] });
    expect(check.results[0]?.buckets[0]?.remaining).toBe(10n);
  });
});
