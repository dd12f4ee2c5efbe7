// The local deny cache against a real server: a denied bucket is answered locally until its
// retry-after passes (by an injected clock), with RPCs counted at the server.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLimiter } from "../src/index.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

describe("deny cache", () => {
  it("answers a denied key locally until its retry-after passes", async () => {
    let now = 1_000;
    const limiter = createLimiter({ address: server.address, now: () => now });
    const key = { policy: "slow", key: "abuser" }; // capacity 2, one token a minute
    expect((await limiter.consume(key)).allowed).toBe(true);
    expect((await limiter.consume(key)).allowed).toBe(true);
    const denied = await limiter.consume(key);
    expect(denied).toMatchObject({ allowed: false, source: "server", remaining: 0 });
    expect(denied.retryAfterMs).toBeGreaterThan(55_000);

    const before = await server.rpcs("Consume");
    const local = await Promise.all(Array.from({ length: 100 }, () => limiter.consume(key)));
    expect(local.every((d) => !d.allowed && d.source === "deny-cache")).toBe(true);
    expect((await server.rpcs("Consume")) - before).toBe(0);
    expect(limiter.stats().denyCacheHits).toBe(100);

    now += 10_000; // the local answer counts down with the clock
    const later = await limiter.consume(key);
    expect(later.source).toBe("deny-cache");
    expect(later.retryAfterMs).toBe(denied.retryAfterMs - 10_000);
    expect(later.buckets[0]).toMatchObject({ policy: "slow", key: "abuser", remaining: 0, limit: { capacity: 2 } });

    now += denied.retryAfterMs; // past the retry-after: back to the server (still denied there: real time did not move)
    expect((await limiter.consume(key)).source).toBe("server");
    expect((await server.rpcs("Consume")) - before).toBe(1);
    await limiter.close();
  });

  it("lets a smaller cost through to the server, and denies a multi-bucket decision that names a denied bucket", async () => {
    const limiter = createLimiter({ address: server.address, now: () => 0 });
    const key = { policy: "slow", key: "costly" };
    expect((await limiter.consume({ ...key, cost: 2 })).allowed).toBe(true);
    expect((await limiter.consume({ ...key, cost: 2 })).source).toBe("server"); // denied: needs 2 minutes
    expect((await limiter.consume({ ...key, cost: 2 })).source).toBe("deny-cache");
    const smaller = await limiter.consume({ ...key, cost: 1 }); // might fit sooner: asked, and denied, by the server
    expect(smaller).toMatchObject({ allowed: false, source: "server" });
    const multi = await limiter.consume({ buckets: [{ policy: "api", key: "fine" }, key] });
    expect(multi).toMatchObject({ allowed: false, source: "deny-cache", buckets: [{ policy: "slow", key: "costly" }] });
    // All-or-nothing: the api bucket was never charged by the denied decisions.
    expect((await limiter.query({ policy: "api", key: "fine" })).remaining).toBe(5);
    await limiter.close();
  });

  it("stays within maxEntries, and can be turned off", async () => {
    const limiter = createLimiter({ address: server.address, denyCache: { maxEntries: 2 }, now: () => 0 });
    for (const k of ["b1", "b2", "b3"]) {
      await limiter.consume({ policy: "slow", key: k, cost: 2 });
      await limiter.consume({ policy: "slow", key: k, cost: 2 });
    }
    expect(limiter.stats().denyCacheSize).toBe(2);
    expect((await limiter.consume({ policy: "slow", key: "b1", cost: 2 })).source).toBe("server"); // the oldest was dropped
    expect((await limiter.consume({ policy: "slow", key: "b3", cost: 2 })).source).toBe("deny-cache");
    await limiter.close();

    const off = createLimiter({ address: server.address, denyCache: false });
    expect((await off.consume({ policy: "slow", key: "b3", cost: 2 })).source).toBe("server");
    expect((await off.consume({ policy: "slow", key: "b3", cost: 2 })).source).toBe("server");
    expect(off.stats().denyCacheSize).toBe(0);
    await off.close();
  });
});
