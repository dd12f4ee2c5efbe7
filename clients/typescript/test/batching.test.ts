// Batching against a real server: RPCs are counted by the server itself, from its own request
// histogram, so the test measures what went over the wire.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Scheduler } from "../src/batcher.ts";
import { createLimiter, Status, TokenmeshError } from "../src/index.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

/** A scheduler whose windows close only when the test says so. */
function manualScheduler(): { scheduler: Scheduler; close(): void; open(): number } {
  let pending: (() => void)[] = [];
  return {
    scheduler: (flush) => {
      pending.push(flush);
      return () => {
        pending = pending.filter((f) => f !== flush);
      };
    },
    close() {
      const now = pending;
      pending = [];
      for (const f of now) f();
    },
    open: () => pending.length,
  };
}

describe("batching", () => {
  it("sends 10,000 concurrent single-decision calls as 10 Consume RPCs", async () => {
    const limiter = createLimiter({ address: server.address, deadlineMs: 5000 });
    const before = await server.rpcs("Consume");
    const decisions = await Promise.all(Array.from({ length: 10_000 }, (_, i) => limiter.consume({ policy: "big", key: `k${i % 100}` })));
    const sent = (await server.rpcs("Consume")) - before;
    expect(decisions.every((d) => d.allowed && d.source === "server")).toBe(true);
    expect(sent).toBe(10);
    expect(limiter.stats().rpcs).toBe(10);
    await limiter.close();
  });

  it("coalesces the calls of one window into one RPC and answers each caller", async () => {
    const manual = manualScheduler();
    const limiter = createLimiter({ address: server.address, scheduler: manual.scheduler, batch: { windowMs: 0.5 } });
    const before = await server.rpcs("Consume");
    const first = [1, 2, 3].map((cost) => limiter.consume({ policy: "api", key: "window-a", cost: cost === 3 ? 3 : 1 }));
    expect(manual.open()).toBe(1); // one window for all three
    manual.close();
    const answers = await Promise.all(first);
    expect(answers.map((d) => d.remaining)).toEqual([4, 3, 0]);
    expect((await server.rpcs("Consume")) - before).toBe(1);

    const second = limiter.consume({ policy: "api", key: "window-b" });
    manual.close();
    expect((await second).remaining).toBe(4);
    expect((await server.rpcs("Consume")) - before).toBe(2);
    await limiter.close();
  });

  it("sends a lone call on the same tick: no timer, no event-loop turn", async () => {
    const limiter = createLimiter({ address: server.address });
    await limiter.consume({ policy: "big", key: "lone-warm" }); // connected
    const rpcs = limiter.stats().rpcs;
    const call = limiter.consume({ policy: "big", key: "lone" });
    await Promise.resolve(); // one microtask: the batch has left
    expect(limiter.stats().rpcs).toBe(rpcs + 1);
    expect((await call).source).toBe("server");
    await limiter.close();
  });

  it("gathers the calls made while a batch is in flight and sends them together when it is answered", async () => {
    const limiter = createLimiter({ address: server.address });
    await limiter.consume({ policy: "big", key: "nagle-warm" });
    const before = await server.rpcs("Consume");
    const first = limiter.consume({ policy: "big", key: "nagle-0" });
    await Promise.resolve(); // the first call is on the wire; its answer needs the event loop
    const behind = Array.from({ length: 5 }, (_, i) => limiter.consume({ policy: "big", key: `nagle-${i + 1}` }));
    const answers = await Promise.all([first, ...behind]);
    expect(answers.every((d) => d.allowed && d.source === "server")).toBe(true);
    expect((await server.rpcs("Consume")) - before).toBe(2); // the first alone, then the five together
    await limiter.close();
  });

  it("sends a batch as soon as it reaches maxSize, without waiting for the window", async () => {
    const manual = manualScheduler();
    const limiter = createLimiter({ address: server.address, scheduler: manual.scheduler, batch: { maxSize: 3 } });
    const before = await server.rpcs("Consume");
    const calls = Array.from({ length: 7 }, (_, i) => limiter.consume({ policy: "big", key: `size-${i}` }));
    // Two full batches left at once; the seventh call waits for its window.
    await Promise.all(calls.slice(0, 6));
    expect((await server.rpcs("Consume")) - before).toBe(2);
    manual.close();
    await calls[6];
    expect((await server.rpcs("Consume")) - before).toBe(3);
    await limiter.close();
  });

  it("fails only the bad call of a batch the server refused, and charges the others once", async () => {
    const limiter = createLimiter({ address: server.address });
    const calls = [
      limiter.consume({ policy: "api", key: "iso-1" }),
      limiter.consume({ policy: "no-such-policy", key: "x" }),
      limiter.consume({ policy: "api", key: "iso-2", cost: 99 }), // above capacity 5
      limiter.consume({ policy: "api", key: "iso-3" }),
    ];
    const settled = await Promise.allSettled(calls);
    expect(settled.map((s) => s.status)).toEqual(["fulfilled", "rejected", "rejected", "fulfilled"]);
    const bad = settled[1] as PromiseRejectedResult;
    expect(bad.reason).toBeInstanceOf(TokenmeshError);
    expect((bad.reason as TokenmeshError).code).toBe(Status.INVALID_ARGUMENT);
    expect((bad.reason as TokenmeshError).message).toMatch(
      /^INVALID_ARGUMENT: decision\.buckets\[0\]\.policy: unknown policy "no-such-policy"/,
    );
    expect((settled[2] as PromiseRejectedResult).reason.message).toMatch(/cost: 99 exceeds the bucket's capacity of 5/);
    // Each good call took exactly one token although its batch was sent more than once.
    const after = await limiter.query({
      buckets: [
        { policy: "api", key: "iso-1" },
        { policy: "api", key: "iso-3" },
      ],
    });
    expect(after.buckets.map((b) => b.remaining)).toEqual([4, 4]);
    await limiter.close();
  });

  it("adapts to a server that takes fewer decisions per request, charging each call once", async () => {
    const small = await startTestServer("127.0.0.1:0", { maxDecisionsPerRequest: 10 });
    const infos: object[] = [];
    const limiter = createLimiter({ address: small.address, logger: { warn() {}, info: (fields) => infos.push(fields) } });
    try {
      const first = await Promise.all(Array.from({ length: 25 }, (_, i) => limiter.consume({ policy: "api", key: `cap-${i}` })));
      expect(first.every((d) => d.allowed && d.remaining === 4)).toBe(true); // one token each, no double charge
      expect(await small.rpcs("Consume")).toBe(4); // refused 25, then 10 + 10 + 5
      expect(infos).toEqual([{ serverCap: 10, maxSize: 1000 }]);
      await Promise.all(Array.from({ length: 25 }, (_, i) => limiter.consume({ policy: "api", key: `cap-${i}` })));
      expect(await small.rpcs("Consume")).toBe(7); // later batches fit from the start
    } finally {
      await limiter.close();
      await small.stop();
    }
  });

  it("close() sends what is queued, answers it, then refuses new calls", async () => {
    const manual = manualScheduler(); // the window never closes by itself: only close() can send
    const limiter = createLimiter({ address: server.address, scheduler: manual.scheduler });
    const queued = [limiter.consume({ policy: "big", key: "close-1" }), limiter.query({ policy: "big", key: "close-2" })];
    await limiter.close();
    expect((await Promise.all(queued)).map((d) => d.source)).toEqual(["server", "server"]);
    await expect(limiter.consume({ policy: "big", key: "close-3" })).rejects.toThrow(/FAILED_PRECONDITION: the limiter is closed/);
  });

  it("rejects a malformed call locally, before it can join a batch", async () => {
    const limiter = createLimiter({ address: server.address });
    const before = await server.rpcs("Consume");
    await expect(limiter.consume({ policy: "api", key: "" })).rejects.toThrow(/request\.key: must be a non-empty string/);
    await expect(limiter.consume({ policy: "api", key: "a", cost: 0 })).rejects.toThrow(/request\.cost: must be an integer/);
    await expect(
      limiter.consume({
        buckets: [
          { policy: "api", key: "a" },
          { policy: "api", key: "a" },
        ],
      }),
    ).rejects.toThrow(/buckets\[1\]: names the same bucket twice/);
    await expect(limiter.consume({ buckets: [] })).rejects.toThrow(/buckets: must hold 1\.\.16 buckets, got 0/);
    expect((await server.rpcs("Consume")) - before).toBe(0);
    await limiter.close();
  });
});
