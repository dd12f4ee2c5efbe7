// The HTTP/JSON door over a real server on loopback, called as curl would (node's fetch): health
// and readiness probes, the /v1/check convenience, and Consume/Query over the Connect protocol,
// sharing buckets with the gRPC door.

import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

let t: TestServer;
let base: string;

beforeAll(async () => {
  t = await startTestServer({
    policies: { login: { capacity: 2, refill: 1, per: "10s" }, api: { capacity: 100, refill: 100, per: "1m" } },
  });
  base = `http://127.0.0.1:${t.server.httpPort}`;
});
afterAll(async () => {
  await t.close();
});

const post = (path: string, body: unknown) =>
  fetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

describe("probes", () => {
  it("GET /health answers 200 {status: ok}", async () => {
    const r = await fetch(`${base}/health`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: "ok" });
  });

  it("GET /ready answers 200 once the replica admits", async () => {
    const r = await fetch(`${base}/ready`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: "ready" });
  });
});

describe("GET /v1/check", () => {
  it("answers 200 while allowed and 429 when denied, with RateLimit headers and Retry-After", async () => {
    const url = `${base}/v1/check?policy=login&key=alice`;
    const first = await fetch(url);
    expect(first.status).toBe(200);
    expect(first.headers.get("ratelimit-policy")).toBe('"login";q=2;w=20');
    expect(first.headers.get("ratelimit")).toBe('"login";r=1;t=10');
    expect(first.headers.get("retry-after")).toBeNull();
    expect(await first.json()).toEqual({
      allowed: true,
      remaining: 1,
      retryAfterMs: 0,
      resetAfterMs: 10_000,
      limit: { capacity: 2, refillTokens: 1, refillPeriodMs: 10_000 },
    });
    expect((await fetch(url)).status).toBe(200);
    const denied = await fetch(url);
    expect(denied.status).toBe(429);
    expect(denied.headers.get("retry-after")).toBe("10");
    expect(denied.headers.get("ratelimit")).toBe('"login";r=0;t=10');
    expect(await denied.json()).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 10_000 });
    t.advance(10_000_000);
    expect((await fetch(url)).status).toBe(200);
  });

  it("takes a cost", async () => {
    const r = await fetch(`${base}/v1/check?policy=api&key=c&cost=30`);
    expect(await r.json()).toMatchObject({ allowed: true, remaining: 70 });
  });
});

describe("Connect: POST /tokenmesh.v1.RateLimiter/{Consume,Query} with JSON", () => {
  it("consumes with the protobuf JSON mapping, on the same buckets as gRPC", async () => {
    const r = await post("/tokenmesh.v1.RateLimiter/Consume", { decisions: [{ buckets: [{ policy: "api", key: "shared", cost: 10 }] }] });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("application/json");
    expect(await r.json()).toEqual({
      results: [
        {
          allowed: true,
          retryAfterUs: "0",
          buckets: [
            {
              remaining: "90",
              retryAfterUs: "0",
              resetAfterUs: "6000000",
              capacity: "100",
              refillTokens: "100",
              refillPeriodMs: "60000",
              replicas: [],
              // Every field of the mapping is written; these two say something only for strict policies.
              denyReason: "DENY_REASON_UNSPECIFIED",
              heldTokens: "0",
            },
          ],
        },
      ],
    });
    const grpc = await t.client.query({ decisions: [{ buckets: [{ policy: "api", key: "shared" }] }] });
    expect(grpc.results[0]?.buckets[0]?.remaining).toBe(90n);
    const q = await post("/tokenmesh.v1.RateLimiter/Query", { decisions: [{ buckets: [{ policy: "api", key: "shared", cost: 91 }] }] });
    expect(await q.json()).toMatchObject({ results: [{ allowed: false, buckets: [{ remaining: "90" }] }] });
  });

  it("answers a denied decision with allowed: false spelled out", async () => {
    const d = { decisions: [{ buckets: [{ policy: "login", key: "connect" }] }] };
    await post("/tokenmesh.v1.RateLimiter/Consume", d);
    await post("/tokenmesh.v1.RateLimiter/Consume", d);
    const r = await (await post("/tokenmesh.v1.RateLimiter/Consume", d)).json();
    expect(r).toMatchObject({ results: [{ allowed: false, retryAfterUs: "10000000", buckets: [{ remaining: "0" }] }] });
  });
});

describe("routes", () => {
  it("answers 404 naming the routes, and 405 with Allow for the wrong method", async () => {
    const missing = await fetch(`${base}/nope`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { message: string }).message).toMatch(/^no route \/nope: try GET \/v1\/check/);
    const wrong = await fetch(`${base}/v1/check?policy=api&key=a`, { method: "DELETE" });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("GET");
  });

  it("reports draining on /ready once shutdown began", async () => {
    const other = await startTestServer({ policies: { api: { capacity: 1, refill: 1, per: "1s" } } });
    try {
      other.server.decisions.drain();
      const r = await fetch(`http://127.0.0.1:${other.server.httpPort}/ready`);
      expect(r.status).toBe(503);
      expect(await r.json()).toEqual({ status: "not ready", reason: "draining: shutting down; try another replica" });
      expect((await fetch(`http://127.0.0.1:${other.server.httpPort}/health`)).status).toBe(200);
    } finally {
      await other.close();
    }
  });

  it("reports warming up on /ready, and check answers 503, while a mesh replica waits for its peers", async () => {
    const warming = await startTestServer({
      policies: { api: { capacity: 1, refill: 1, per: "1s" } },
      mesh: { node: "w", peerListen: "127.0.0.1:0", peers: ["127.0.0.1:1"], insecure: true, warmupTimeout: "1m" },
    });
    try {
      const at = `http://127.0.0.1:${warming.server.httpPort}`;
      const ready = await fetch(`${at}/ready`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { reason: string }).reason).toMatch(/^warming up: syncing with its peers/);
      const check = await fetch(`${at}/v1/check?policy=api&key=a`);
      expect(check.status).toBe(503);
      expect(await check.json()).toEqual({
        code: "unavailable",
        message: "replica: warming up: syncing with its peers before admitting (at most mesh.warmupTimeout); try another replica",
      });
    } finally {
      await warming.close();
    }
  });

  it("writes HTTP consumption to the audit log like gRPC's", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "tokenmesh-http-audit-")), "audit.log");
    const audited = await startTestServer({
      policies: { api: { capacity: 1, refill: 1, per: "1h" } },
      audit: { destination: file, sample: { allowed: 1, denied: 1 }, key: "plain" },
    });
    const at = `http://127.0.0.1:${audited.server.httpPort}`;
    await fetch(`${at}/v1/check?policy=api&key=erin`);
    await fetch(`${at}/tokenmesh.v1.RateLimiter/Consume`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ decisions: [{ buckets: [{ policy: "api", key: "erin" }] }] }),
    });
    await audited.close();
    const lines = readFileSync(file, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { policy: string; key: string; outcome: string });
    expect(lines.map((l) => [l.policy, l.key, l.outcome])).toEqual([
      ["api", "erin", "allowed"],
      ["api", "erin", "denied"],
    ]);
  });
});
