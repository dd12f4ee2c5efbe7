// Express and Fastify middleware over real HTTP on 127.0.0.1, against a real tokenmesh server:
// 429 with Retry-After, and the IETF RateLimit-Policy / RateLimit fields on every limited response.

import type { AddressInfo } from "node:net";
import express from "express";
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLimiter, expressRateLimit, fastifyRateLimit, keyFrom, type Limiter } from "../src/index.ts";
import { deadAddress, startTestServer, type TestServer } from "./helpers/server.ts";

let server: TestServer;
let limiter: Limiter;
beforeAll(async () => {
  server = await startTestServer();
  limiter = createLimiter({ address: server.address });
});
afterAll(async () => {
  await limiter.close();
  await server.stop();
});

type Start = (limiter: Limiter) => Promise<{ url: string; close(): Promise<void> }>;

/** Route handler runs, per framework: a denied request must never reach its route. */
const handled = { express: 0, fastify: 0 };

const startExpress: Start = async (limiter) => {
  const app = express();
  app.use(
    "/multi",
    expressRateLimit({
      limiter,
      buckets: (req) => [
        { policy: "api", key: `user:${req.headers["x-user"]}` },
        { policy: "slow", key: "tenant-e" },
      ],
    }),
  );
  app.use(expressRateLimit({ limiter, policy: "api", key: keyFrom.header("x-api-key") }));
  app.get("/", (_req, res) => {
    handled.express++;
    res.send("ok");
  });
  app.get("/multi", (_req, res) => {
    res.send("ok");
  });
  const http = app.listen(0, "127.0.0.1");
  await new Promise<void>((resolve) => http.once("listening", () => resolve()));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => http.close(() => resolve())),
  };
};

const startFastify: Start = async (limiter) => {
  const app = Fastify();
  // Each hook in its own encapsulated scope, so each route gets exactly one.
  await app.register(async (scope) => {
    scope.addHook("onRequest", fastifyRateLimit({ limiter, policy: "api", key: keyFrom.header("x-api-key") }));
    scope.get("/", async () => {
      handled.fastify++;
      return "ok";
    });
  });
  await app.register(async (scope) => {
    scope.addHook(
      "onRequest",
      fastifyRateLimit({
        limiter,
        buckets: (req) => [
          { policy: "api", key: `user:${req.headers["x-user"]}` },
          { policy: "slow", key: "tenant-f" },
        ],
      }),
    );
    scope.get("/multi", async () => "ok");
  });
  await app.listen({ port: 0, host: "127.0.0.1" });
  return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, close: () => app.close() };
};

describe.each([["express", startExpress] as const, ["fastify", startFastify] as const])("%s", (name, start) => {
  it("sets RateLimit fields on every response and answers 429 with Retry-After when the bucket is empty", async () => {
    const app = await start(limiter);
    try {
      const headers = { "x-api-key": `key-${name}` };
      for (let i = 4; i >= 0; i--) {
        const ok = await fetch(`${app.url}/`, { headers });
        expect(ok.status).toBe(200);
        expect(await ok.text()).toBe("ok");
        expect(ok.headers.get("ratelimit-policy")).toBe('"api";q=5;w=5');
        expect(ok.headers.get("ratelimit")).toBe(`"api";r=${i};t=${5 - i}`);
        expect(ok.headers.get("retry-after")).toBeNull();
      }
      const before = handled[name];
      const limited = await fetch(`${app.url}/`, { headers });
      expect(limited.status).toBe(429);
      expect(limited.headers.get("retry-after")).toBe("1");
      expect(limited.headers.get("ratelimit")).toBe('"api";r=0;t=1'); // t points where Retry-After does
      expect(limited.headers.get("ratelimit-policy")).toBe('"api";q=5;w=5');
      expect(await limited.json()).toMatchObject({ error: "rate limited" });
      expect(handled[name]).toBe(before);
    } finally {
      await app.close();
    }
  });

  it("lets a request without a key through uncounted", async () => {
    const app = await start(limiter);
    try {
      const res = await fetch(`${app.url}/`);
      expect(res.status).toBe(200);
      expect(res.headers.get("ratelimit")).toBeNull();
    } finally {
      await app.close();
    }
  });

  it("charges several buckets all-or-nothing and lists each policy", async () => {
    const app = await start(limiter);
    try {
      const send = (user: string) => fetch(`${app.url}/multi`, { headers: { "x-user": `${name}-${user}` } });
      const first = await send("u1");
      expect(first.status).toBe(200);
      expect(first.headers.get("ratelimit-policy")).toBe('"api";q=5;w=5, "slow";q=2;w=120');
      expect(first.headers.get("ratelimit")).toBe('"api";r=4;t=1, "slow";r=1;t=60');
      expect((await send("u2")).status).toBe(200);
      const third = await send("u3"); // the tenant bucket is empty: denied, and u3's own bucket untouched
      expect(third.status).toBe(429);
      expect(Number(third.headers.get("retry-after"))).toBeGreaterThan(55);
      expect(third.headers.get("ratelimit")).toMatch(/^"api";r=5;t=0, "slow";r=0;t=(59|60)$/);
    } finally {
      await app.close();
    }
  });
});

describe("middleware errors", () => {
  it("passes a limiter error (unknown policy) to Express's error handling as a 500", async () => {
    const app = express();
    app.use(expressRateLimit({ limiter, policy: "nope", key: () => "k" }));
    app.get("/", (_req, res) => {
      res.send("ok");
    });
    const http = app.listen(0, "127.0.0.1");
    await new Promise<void>((resolve) => http.once("listening", () => resolve()));
    try {
      const res = await fetch(`http://127.0.0.1:${(http.address() as AddressInfo).port}/`);
      expect(res.status).toBe(500);
    } finally {
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
  });

  it.each([
    ["open", 200, null],
    ["closed", 429, "2"],
  ] as const)(
    "answers by the limiter's fail mode (%s) when tokenmesh is unreachable, without RateLimit fields",
    async (failMode, status, retryAfter) => {
      const unreachable = createLimiter({
        address: await deadAddress(),
        deadlineMs: 300,
        failMode,
        failClosedRetryAfterMs: 1500,
        logger: { warn() {}, info() {} },
      });
      const app = express();
      app.use(expressRateLimit({ limiter: unreachable, policy: "api", key: () => "k" }));
      app.get("/", (_req, res) => {
        res.send("ok");
      });
      const http = app.listen(0, "127.0.0.1");
      await new Promise<void>((resolve) => http.once("listening", () => resolve()));
      try {
        const res = await fetch(`http://127.0.0.1:${(http.address() as AddressInfo).port}/`);
        expect(res.status).toBe(status);
        expect(res.headers.get("retry-after")).toBe(retryAfter);
        expect(res.headers.get("ratelimit")).toBeNull();
      } finally {
        await new Promise<void>((resolve) => http.close(() => resolve()));
        await unreachable.close();
      }
    },
  );

  it("refuses options that name no bucket", () => {
    expect(() => expressRateLimit({ limiter })).toThrow(TypeError);
    expect(() => fastifyRateLimit({ limiter, policy: "api" })).toThrow(/needs both a policy name and a key function/);
  });
});
