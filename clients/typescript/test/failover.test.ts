// Failure handling against real sockets: a refused port, a port that accepts TCP but never
// answers, and a live server behind a dead address. Every test is bounded by the limiter's
// deadline, so an outage can never hang a caller.

import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLimiter, type Logger } from "../src/index.ts";
import { deadAddress, startTestServer, type TestServer } from "./helpers/server.ts";

let server: TestServer;
let silent: Server;
const sockets = new Set<Socket>();
let silentAddress: string;

beforeAll(async () => {
  server = await startTestServer();
  // Accepts connections and never speaks HTTP/2: calls to it can only end by their deadline.
  silent = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  const a = silent.address();
  silentAddress = `127.0.0.1:${typeof a === "object" && a !== null ? a.port : 0}`;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => silent.close(() => resolve()));
  await server.stop();
});

function recordingLogger(): Logger & { lines: { level: string; message: string; fields: object }[] } {
  const lines: { level: string; message: string; fields: object }[] = [];
  return {
    lines,
    warn: (fields, message) => lines.push({ level: "warn", message, fields }),
    info: (fields, message) => lines.push({ level: "info", message, fields }),
  };
}

describe("an unreachable service", () => {
  it("fails open on a refused port: allowed, counted, logged once", async () => {
    const logger = recordingLogger();
    const limiter = createLimiter({ address: await deadAddress(), deadlineMs: 300, failMode: "open", logger });
    const started = performance.now();
    const answers = await Promise.all([1, 2, 3].map((i) => limiter.consume({ policy: "api", key: `k${i}` })));
    const again = await limiter.consume({ policy: "api", key: "k4" });
    expect(performance.now() - started).toBeLessThan(2000);
    expect([...answers, again].map((d) => [d.allowed, d.source])).toEqual(Array(4).fill([true, "fail-open"]));
    expect(limiter.stats()).toMatchObject({ failOpen: 4, failClosed: 0 });
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatchObject({
      level: "warn",
      message: "tokenmesh unreachable; failing open",
      fields: { code: "UNAVAILABLE" },
    });
    await limiter.close();
  });

  it("fails closed with the configured retry-after when the server never answers, within the deadline", async () => {
    const logger = recordingLogger();
    const limiter = createLimiter({ address: silentAddress, deadlineMs: 200, failMode: "closed", failClosedRetryAfterMs: 1500, logger });
    const started = performance.now();
    const d = await limiter.consume({ policy: "api", key: "k" });
    const elapsed = performance.now() - started;
    expect(d).toMatchObject({ allowed: false, retryAfterMs: 1500, source: "fail-closed", buckets: [] });
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(1500);
    expect(limiter.stats().failClosed).toBe(1);
    expect(logger.lines[0]?.fields).toMatchObject({ code: "DEADLINE_EXCEEDED", failMode: "closed" });
    await limiter.close();
  });

  it("counts a call's deadline from when it was made, also while it waits behind a batch in flight", async () => {
    const limiter = createLimiter({ address: silentAddress, deadlineMs: 400, failMode: "closed", logger: recordingLogger() });
    const started = performance.now();
    const first = limiter.consume({ policy: "api", key: "stuck" });
    await new Promise((resolve) => setTimeout(resolve, 100)); // the first batch hangs on the wire
    const behind = limiter.consume({ policy: "api", key: "behind" });
    const [a, b] = await Promise.all([first, behind]);
    const elapsed = performance.now() - started;
    expect([a.source, b.source]).toEqual(["fail-closed", "fail-closed"]);
    // The second call waited for the first batch (400 ms) and then had no deadline left; with a
    // deadline counted from its send it would have ended near 800 ms.
    expect(elapsed).toBeLessThan(650);
    await limiter.close();
  });

  it("fails over from a refused address to a live one without charging twice, and sticks to it", async () => {
    const logger = recordingLogger();
    const limiter = createLimiter({ addresses: [await deadAddress(), server.address], deadlineMs: 1000, logger });
    const before = await server.rpcs("Consume");
    const first = await limiter.consume({ policy: "api", key: "failover" });
    expect(first).toMatchObject({ allowed: true, remaining: 4, source: "server" });
    const second = await limiter.consume({ policy: "api", key: "failover" });
    expect(second.remaining).toBe(3); // one token per call: the refused attempt never reached a server
    expect((await server.rpcs("Consume")) - before).toBe(2);
    expect(limiter.stats()).toMatchObject({ rpcs: 3, failovers: 1 }); // the second call went straight to the live one
    expect(logger.lines).toEqual([]);
    await limiter.close();
  });

  it("does not resend a Consume that timed out (it may have been processed), even with a live address next", async () => {
    const limiter = createLimiter({
      addresses: [silentAddress, server.address],
      deadlineMs: 300,
      failMode: "closed",
      logger: recordingLogger(),
    });
    const before = await server.rpcs("Consume");
    const consumed = await limiter.consume({ policy: "api", key: "no-resend" });
    expect(consumed.source).toBe("fail-closed");
    expect((await server.rpcs("Consume")) - before).toBe(0);
    expect(limiter.stats()).toMatchObject({ rpcs: 1, failovers: 0 });
    await limiter.close();
  });

  it("retries and fails over a Query, which takes no token", async () => {
    const limiter = createLimiter({ addresses: [await deadAddress(), server.address], deadlineMs: 1000, logger: recordingLogger() });
    const before = await server.rpcs("Query");
    const queried = await limiter.query({ policy: "api", key: "query-failover" });
    expect(queried).toMatchObject({ allowed: true, remaining: 5, source: "server" });
    expect((await server.rpcs("Query")) - before).toBe(1);
    expect(limiter.stats().failovers).toBe(1);
    await limiter.close();
  });

  it("treats a TLS handshake against a plaintext server as unreachable, within the deadline", async () => {
    // The tokenmesh server has no client-facing TLS yet, so this checks the credentials wiring
    // and that a TLS mismatch fails fast and never-sent (it fails over like a refused port).
    const logger = recordingLogger();
    const limiter = createLimiter({ addresses: [server.address], tls: true, deadlineMs: 500, failMode: "closed", logger });
    const started = performance.now();
    const d = await limiter.consume({ policy: "api", key: "tls" });
    expect(d.source).toBe("fail-closed");
    expect(performance.now() - started).toBeLessThan(2000);
    expect(logger.lines[0]?.fields).toMatchObject({ code: "UNAVAILABLE", details: expect.stringMatching(/No connection established/) });
    await limiter.close();
  });

  it("reminds the log while an outage lasts, at most every 10 s", async () => {
    const logger = recordingLogger();
    let now = 0;
    const limiter = createLimiter({ addresses: [await deadAddress()], deadlineMs: 200, logger, now: () => now });
    await limiter.consume({ policy: "api", key: "a" });
    now += 11_000; // past the reminder interval: a second warn line, with the calls answered since
    await limiter.consume({ policy: "api", key: "b" });
    await limiter.consume({ policy: "api", key: "c" }); // within the interval: counted, not logged
    expect(logger.lines.map((l) => l.message)).toEqual(["tokenmesh unreachable; failing open", "tokenmesh unreachable; failing open"]);
    expect(limiter.stats().failOpen).toBe(3);
    await limiter.close();
  });

  it("logs recovery when a server comes back on the address", async () => {
    const logger = recordingLogger();
    const address = await deadAddress();
    const limiter = createLimiter({ address, deadlineMs: 200, logger });
    expect((await limiter.consume({ policy: "api", key: "r" })).source).toBe("fail-open");
    const revived = await startTestServer(address);
    try {
      // grpc-js reconnects after its backoff (about 1 s); poll, bounded.
      let source = "fail-open";
      for (let i = 0; i < 60 && source !== "server"; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        source = (await limiter.consume({ policy: "api", key: "r" })).source;
      }
      expect(source).toBe("server");
      expect(logger.lines.at(-1)).toMatchObject({ level: "info", message: "tokenmesh reachable again" });
    } finally {
      await limiter.close();
      await revived.stop();
    }
  });
});
