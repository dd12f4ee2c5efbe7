// Input no generated client sends, over a real server on loopback, one row per case: keys and
// policy names that are not UTF-8 (which a lossy decoder would fold into one bucket), varints
// too large for their field (which a stock decoder would truncate), a deadline already passed,
// too many streams on one connection, too many connections from one client, and overload. Each
// row checks the status code, the message, and that no state changed.

import { type ClientHttp2Session, connect } from "node:http2";
import { createConnection } from "node:net";
import { createChannel, createClient } from "nice-grpc";
import { HealthDefinition } from "nice-grpc-server-health";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/mesh.ts";
import { openRawStreams, type RawBucket, rawRequest, rawUnary } from "../support/raw-grpc.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

const CONSUME = "/tokenmesh.v1.RateLimiter/Consume";
const QUERY = "/tokenmesh.v1.RateLimiter/Query";
const INVALID_ARGUMENT = 3;
const B = (s: string): Uint8Array => Uint8Array.from(s.split(" ").map((h) => Number.parseInt(h, 16)));
const key = (bytes: string): RawBucket => ({ policy: "api", key: B(bytes) });
const inline = (capacity: bigint, refillTokens: bigint, refillPeriodMs: bigint): RawBucket => ({
  policy: "custom",
  key: "k",
  limit: { capacity, refillTokens, refillPeriodMs },
});
const U64_MAX = 2n ** 64n - 1n;
const at = "decisions\\[0\\]\\.buckets\\[0\\]";

const cases: { name: string; bucket: RawBucket; message: RegExp }[] = [
  {
    name: "key byte 0xff",
    bucket: key("ff"),
    message: new RegExp(`^${at}\\.key: must be valid UTF-8; got 1 bytes that are not \\(ff\\)$`),
  },
  {
    name: "key byte 0xfe",
    bucket: key("61 fe"),
    message: new RegExp(`^${at}\\.key: must be valid UTF-8; got 2 bytes that are not \\(61 fe\\)$`),
  },
  { name: "key byte 0x80 (a lone continuation)", bucket: key("80"), message: new RegExp(`^${at}\\.key: must be valid UTF-8`) },
  { name: "key with an overlong encoding of '/'", bucket: key("c0 af"), message: new RegExp(`^${at}\\.key: must be valid UTF-8`) },
  { name: "key with a UTF-16 surrogate", bucket: key("ed a0 80"), message: new RegExp(`^${at}\\.key: must be valid UTF-8`) },
  { name: "key cut inside a character", bucket: key("e2 82"), message: new RegExp(`^${at}\\.key: must be valid UTF-8`) },
  {
    name: "policy name not UTF-8",
    bucket: { policy: B("61 70 ff"), key: "k" },
    message: new RegExp(`^${at}\\.policy: must be valid UTF-8; got 3 bytes that are not \\(61 70 ff\\)$`),
  },
  {
    name: "cost 2^32 + 5 (a uint32 would keep 5)",
    bucket: { policy: "api", key: "k", cost: 2n ** 32n + 5n },
    message: new RegExp(`^${at}\\.cost: must be at most 4294967295 \\(a uint32\\), got 4294967301$`),
  },
  {
    name: "cost 2^64 - 1",
    bucket: { policy: "api", key: "k", cost: U64_MAX },
    message: new RegExp(`^${at}\\.cost: must be at most 4294967295 \\(a uint32\\), got 18446744073709551615$`),
  },
  {
    name: "inline capacity 2^64 - 1",
    bucket: inline(U64_MAX, 1n, 1000n),
    message: new RegExp(`^${at}\\.limit\\.capacity: must be 1\\.\\.1000 for policy "custom", got 18446744073709551615$`),
  },
  {
    name: "inline refill 2^53 + 1 (a double would round it)",
    bucket: inline(5n, 2n ** 53n + 1n, 1000n),
    message: new RegExp(`^${at}\\.limit\\.refill_tokens: must be 1\\.\\.1000000000000, got 9007199254740993$`),
  },
  {
    name: "inline period 2^64 - 1 ms",
    bucket: inline(5n, 1n, U64_MAX),
    message: new RegExp(`^${at}\\.limit\\.refill_period_ms: must be 1\\.\\.31622400000 \\(one year\\), got 18446744073709551615$`),
  },
];

describe("hostile input over a real server", () => {
  let t: TestServer;
  const full = async (): Promise<bigint | undefined> => {
    const r = await t.client.query({ decisions: [{ buckets: [{ policy: "api", key: "k" }] }] });
    return r.results[0]?.buckets[0]?.remaining;
  };
  beforeAll(async () => {
    t = await startTestServer({
      limits: { maxConnectionsPerClient: 20, maxConcurrentStreams: 50, shedEventLoopLag: "100ms" },
      policies: {
        api: { capacity: 10, refill: 1, per: "1s" },
        custom: { capacity: 10, refill: 1, per: "1s", inline: { maxCapacity: 1000, maxRefillPerSecond: 100 } },
      },
    });
  });
  afterAll(async () => {
    await t.close();
  });

  it.each(cases)("$name: INVALID_ARGUMENT naming the field, no state changed", async ({ bucket, message }) => {
    const address = `127.0.0.1:${t.server.port}`;
    for (const path of [CONSUME, QUERY]) {
      const r = await rawUnary(address, path, rawRequest([bucket]));
      expect({ code: r.code, message: r.message }).toEqual({ code: INVALID_ARGUMENT, message: expect.stringMatching(message) });
    }
    expect(t.server.limiter.store.size).toBe(0);
    expect(await full()).toBe(10n);
  });

  it("keys 0xff, 0xfe and 0x80 are refused, never one shared bucket", async () => {
    const address = `127.0.0.1:${t.server.port}`;
    const valid = await rawUnary(address, CONSUME, rawRequest([{ policy: "api", key: "\uFFFD" }]));
    expect(valid.code).toBe(0);
    for (const k of ["ff", "fe", "80"]) expect((await rawUnary(address, CONSUME, rawRequest([key(k)]))).code).toBe(INVALID_ARGUMENT);
    const r = await t.client.query({ decisions: [{ buckets: [{ policy: "api", key: "\uFFFD" }] }] });
    expect(r.results[0]?.buckets[0]?.remaining).toBe(9n);
  });

  it("a call whose deadline has passed takes no tokens, and is counted", async () => {
    const address = `127.0.0.1:${t.server.port}`;
    const before = t.server.limiter.store.size;
    const results = await Promise.all(
      Array.from({ length: 200 }, () => rawUnary(address, CONSUME, rawRequest([{ policy: "api", key: "late" }]), { "grpc-timeout": "1u" })),
    );
    for (const r of results) expect(r.code).toBe(4); // DEADLINE_EXCEEDED
    const ours = results.filter((r) => r.message === "call: deadline passed before its decision was applied; no tokens were taken");
    expect(ours.length).toBeGreaterThan(0);
    expect(t.server.limiter.store.size).toBe(before);
    const q = await t.client.query({ decisions: [{ buckets: [{ policy: "api", key: "late" }] }] });
    expect(q.results[0]?.buckets[0]?.remaining).toBe(10n);
    const metrics = await t.server.metrics.registry.getSingleMetricAsString("tokenmesh_expired_calls_total");
    expect(metrics).toMatch(new RegExp(`tokenmesh_expired_calls_total\\{reason="deadline"\\} ${ours.length}\\b`));
  });

  it("a client cannot hold its call to a deadline of its own through the internal metadata key", async () => {
    const address = `127.0.0.1:${t.server.port}`;
    const spoofed = { "tokenmesh-internal-deadline-ms": "0" };
    for (const headers of [spoofed, { ...spoofed, "grpc-timeout": "30S" }]) {
      const r = await rawUnary(address, CONSUME, rawRequest([{ policy: "api", key: "spoof" }]), headers);
      expect(r.code).toBe(0);
    }
    // Both were charged (8 left; refill at 1/s may have given one back on a slow machine).
    const q = await t.client.query({ decisions: [{ buckets: [{ policy: "api", key: "spoof" }] }] });
    expect(q.results[0]?.buckets[0]?.remaining).toBeLessThan(10n);
  });

  it("bounds the streams one connection may open: advertised, and those beyond are reset", async () => {
    const session: ClientHttp2Session = connect(`http://127.0.0.1:${t.server.port}`);
    await new Promise<void>((resolve) => session.once("remoteSettings", () => resolve()));
    expect(session.remoteSettings.maxConcurrentStreams).toBe(50);
    session.close();
    // A client that ignores the setting: 60 streams held open, the 10 beyond 50 reset at once.
    const resets = await openRawStreams(t.server.port, CONSUME, 60);
    expect(resets.length).toBe(10);
    for (const code of resets) expect([0x7 /* REFUSED_STREAM */, 0xb /* ENHANCE_YOUR_CALM */]).toContain(code);
    expect(await full()).toBe(10n);
  });

  it("bounds the connections from one client address, closing the extra ones at once", async () => {
    const refusedNow = async (): Promise<number> => {
      const text = await t.server.metrics.registry.getSingleMetricAsString("tokenmesh_client_connections_refused_total");
      return Number(/reason="max_connections_per_client"\} (\d+)/.exec(text)?.[1] ?? Number.NaN);
    };
    const before = await refusedNow();
    const held: ReturnType<typeof createConnection>[] = [];
    try {
      // Up to the bound (the test's own client channel holds one connection already).
      for (let i = 0; i < 25; i++) {
        const s = createConnection(t.server.port, "127.0.0.1");
        held.push(s);
        await new Promise((resolve) => s.once("connect", resolve));
      }
      const closed = (): number => held.filter((s) => s.destroyed || s.closed).length;
      await eventually(async () => closed() >= 5 && (await refusedNow()) === before + closed(), 5_000, "the extra connections closed");
    } finally {
      for (const s of held) s.destroy();
    }
    expect(await full()).toBe(10n);
  });

  it("sheds calls with RESOURCE_EXHAUSTED while the event loop is behind, and keeps answering health checks", async () => {
    const channel = createChannel(`127.0.0.1:${t.server.port}`);
    const health = createClient(HealthDefinition, channel);
    // Keep this process's loop 150 ms behind (the server runs in it), for a while.
    const busy = setInterval(() => {
      const until = performance.now() + 150;
      while (performance.now() < until) {}
    }, 10);
    try {
      let shed: { code: number; details: string } | undefined;
      await eventually(
        async () => {
          shed = await t.client.consume({ decisions: [{ buckets: [{ policy: "api", key: "busy" }] }] }).then(
            () => undefined,
            (err: { code: number; details: string }) => err,
          );
          return shed !== undefined;
        },
        5_000,
        "a call shed",
      );
      expect(shed?.code).toBe(8); // RESOURCE_EXHAUSTED
      expect(shed?.details).toMatch(
        /^server: overloaded: the event loop is \d+ ms behind \(limits\.shedEventLoopLag is 100 ms\); retry after a backoff$/,
      );
      expect((await health.check({ service: "tokenmesh.v1.RateLimiter" })).status).toBe(1); // SERVING
    } finally {
      clearInterval(busy);
      channel.close();
    }
    // Only calls that were not shed took a token; once the loop keeps time, none is shed.
    const shedNow = Number(
      /tokenmesh_shed_calls_total (\d+)/.exec(await t.server.metrics.registry.getSingleMetricAsString("tokenmesh_shed_calls_total"))?.[1],
    );
    expect(shedNow).toBeGreaterThanOrEqual(1);
    let after: bigint | undefined;
    await eventually(
      async () => {
        after = (await t.client.query({ decisions: [{ buckets: [{ policy: "api", key: "busy" }] }] }).catch(() => undefined))?.results[0]
          ?.buckets[0]?.remaining;
        return after !== undefined;
      },
      5_000,
      "answered again",
    );
    const admitted = 10n - (after as bigint);
    const allowed = await t.server.metrics.registry.getSingleMetricAsString("tokenmesh_decisions_total");
    expect(allowed).toMatch(new RegExp(`policy="api",result="allowed"\\} ${3n + admitted}\\b`)); // "\uFFFD" and the two "spoof" calls above, and these
  });
});
