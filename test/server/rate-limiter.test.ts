// Consume and Query over a real server with a controlled clock: denials, retry and reset times
// that match the policy, all-or-nothing decisions, batches answered in order, inline limits.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

const bucket = (policy: string, key: string, cost?: number) => ({ policy, key, ...(cost === undefined ? {} : { cost }) });

describe("RateLimiter over a real server", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      policies: {
        // 5 tokens, one more every 10 s
        login: { capacity: 5, refill: 1, per: "10s" },
        // 100 per minute
        api: { capacity: 100, refill: 100, per: "1m" },
        tenant: { capacity: 3, refill: 3, per: "1s" },
        custom: { capacity: 1, refill: 1, per: "1s", inline: { maxCapacity: 1000, maxRefillPerSecond: 1000 } },
      },
    });
  });
  afterAll(async () => {
    await t.close();
  });

  it("denies after the capacity and gives retry and reset times from the policy", async () => {
    for (let i = 4; i >= 0; i--) {
      const r = await t.client.consume({ decisions: [{ buckets: [bucket("login", "bob")] }] });
      expect(r.results[0]?.allowed).toBe(true);
      expect(r.results[0]?.buckets[0]?.remaining).toBe(BigInt(i));
    }
    const denied = await t.client.consume({ decisions: [{ buckets: [bucket("login", "bob")] }] });
    const result = denied.results[0];
    expect(result?.allowed).toBe(false);
    expect(result?.retryAfterUs).toBe(10_000_000n);
    expect(result?.buckets[0]).toMatchObject({
      remaining: 0n,
      retryAfterUs: 10_000_000n,
      resetAfterUs: 50_000_000n,
      capacity: 5n,
      refillTokens: 1n,
      refillPeriodMs: 10_000n,
    });

    t.advance(9_999_999);
    expect((await t.client.consume({ decisions: [{ buckets: [bucket("login", "bob")] }] })).results[0]).toMatchObject({
      allowed: false,
      retryAfterUs: 1n,
    });
    t.advance(1);
    expect((await t.client.consume({ decisions: [{ buckets: [bucket("login", "bob")] }] })).results[0]?.allowed).toBe(true);
  });

  it("query reads without consuming", async () => {
    for (let i = 0; i < 3; i++) {
      const q = await t.client.query({ decisions: [{ buckets: [bucket("api", "q", 100)] }] });
      expect(q.results[0]).toMatchObject({ allowed: true, retryAfterUs: 0n });
      expect(q.results[0]?.buckets[0]?.remaining).toBe(100n);
    }
    const c = await t.client.consume({ decisions: [{ buckets: [bucket("api", "q", 60)] }] });
    expect(c.results[0]?.buckets[0]?.remaining).toBe(40n);
    const q = await t.client.query({ decisions: [{ buckets: [bucket("api", "q", 50)] }] });
    // 10 tokens short at 100 per minute: 6 s.
    expect(q.results[0]).toMatchObject({ allowed: false, retryAfterUs: 6_000_000n });
    expect(q.results[0]?.buckets[0]).toMatchObject({ remaining: 40n, resetAfterUs: 36_000_000n });
  });

  it("a multi-bucket decision is all-or-nothing", async () => {
    // Drain the tenant bucket to 1 token.
    await t.client.consume({ decisions: [{ buckets: [bucket("tenant", "t1", 2)] }] });
    const r = await t.client.consume({ decisions: [{ buckets: [bucket("api", "user-a", 1), bucket("tenant", "t1", 2)] }] });
    expect(r.results[0]?.allowed).toBe(false);
    // The per-user bucket was not debited although it had room.
    expect(r.results[0]?.buckets[0]?.remaining).toBe(100n);
    expect(r.results[0]?.buckets[1]?.remaining).toBe(1n);
    const q = await t.client.query({ decisions: [{ buckets: [bucket("api", "user-a")] }] });
    expect(q.results[0]?.buckets[0]?.remaining).toBe(100n);
    const ok = await t.client.consume({ decisions: [{ buckets: [bucket("api", "user-a", 1), bucket("tenant", "t1", 1)] }] });
    expect(ok.results[0]?.allowed).toBe(true);
    expect(ok.results[0]?.buckets.map((b) => b.remaining)).toEqual([99n, 0n]);
  });

  it("answers a batch of independent decisions in order, each seeing the ones before it", async () => {
    const r = await t.client.consume({
      decisions: Array.from({ length: 5 }, () => ({ buckets: [bucket("tenant", "batch")] })),
    });
    expect(r.results.map((x) => x.allowed)).toEqual([true, true, true, false, false]);
    expect(r.results[3]?.retryAfterUs).toBe(333_334n); // 1 token at 3/s, rounded up
  });

  it("the same key under two policies is two buckets", async () => {
    await t.client.consume({ decisions: [{ buckets: [bucket("tenant", "shared", 3)] }] });
    const r = await t.client.query({ decisions: [{ buckets: [bucket("tenant", "shared"), bucket("api", "shared")] }] });
    expect(r.results[0]?.buckets.map((b) => b.remaining)).toEqual([0n, 100n]);
  });

  it("honours an inline limit where the policy allows it", async () => {
    const limit = { capacity: 2n, refillTokens: 1n, refillPeriodMs: 500n };
    const r = await t.client.consume({
      decisions: Array.from({ length: 3 }, () => ({ buckets: [{ policy: "custom", key: "inl", limit }] })),
    });
    expect(r.results.map((x) => x.allowed)).toEqual([true, true, false]);
    expect(r.results[2]?.retryAfterUs).toBe(500_000n);
    expect(r.results[2]?.buckets[0]).toMatchObject({ capacity: 2n, refillTokens: 1n, refillPeriodMs: 500n });
  });
});
