// Table-driven checks that need no server: option validation at construction, and the exact
// RateLimit header field syntax (draft-ietf-httpapi-ratelimit-headers-10).

import { describe, expect, it } from "vitest";
import { rateLimitHeaders } from "../src/http/ratelimit-headers.ts";
import { createLimiter, type Decision, type LimiterOptions } from "../src/index.ts";

describe("createLimiter options", () => {
  const bad: [string, LimiterOptions, RegExp][] = [
    ["no address", {}, /exactly one of address or addresses/],
    ["both forms", { address: "a:1", addresses: ["b:1"] }, /exactly one of address or addresses/],
    ["empty list", { addresses: [] }, /addresses must not be empty/],
    ["empty address", { address: "" }, /non-empty "host:port"/],
    ["zero deadline", { address: "a:1", deadlineMs: 0 }, /deadlineMs must be a number in 1\.\.3600000, got 0/],
    ["NaN deadline", { address: "a:1", deadlineMs: Number.NaN }, /deadlineMs must be a number/],
    ["fail mode", { address: "a:1", failMode: "maybe" as "open" }, /failMode must be "open" or "closed", got maybe/],
    ["batch size 0", { address: "a:1", batch: { maxSize: 0 } }, /batch\.maxSize must be an integer in 1\.\.100000, got 0/],
    ["fractional batch size", { address: "a:1", batch: { maxSize: 1.5 } }, /batch\.maxSize must be an integer/],
    ["negative window", { address: "a:1", batch: { windowMs: -1 } }, /batch\.windowMs must be a number in 0\.\.1000/],
    ["deny cache size", { address: "a:1", denyCache: { maxEntries: -1 } }, /denyCache\.maxEntries must be an integer/],
    ["query attempts", { address: "a:1", queryAttempts: 0 }, /queryAttempts must be an integer in 1\.\.10/],
  ];
  it.each(bad)("refuses %s with a TypeError naming the option", (_name, options, message) => {
    expect(() => createLimiter(options)).toThrow(TypeError);
    expect(() => createLimiter(options)).toThrow(message);
  });
});

const bucket = (
  policy: string,
  remaining: number,
  retryAfterMs: number,
  resetAfterMs: number,
  capacity = 100,
  refill = 100,
  periodMs = 60_000,
) => ({
  policy,
  key: "k",
  remaining,
  retryAfterMs,
  resetAfterMs,
  limit: { capacity, refillTokens: refill, refillPeriodMs: periodMs },
});

const decision = (allowed: boolean, buckets: ReturnType<typeof bucket>[]): Decision => ({
  allowed,
  remaining: Math.min(...buckets.map((b) => b.remaining)),
  retryAfterMs: allowed ? 0 : Math.max(...buckets.map((b) => b.retryAfterMs)),
  resetAfterMs: Math.max(...buckets.map((b) => b.resetAfterMs)),
  buckets,
  source: "server",
});

describe("RateLimit header fields", () => {
  const cases: [string, Decision, string, string][] = [
    ["100 a minute", decision(true, [bucket("api", 42, 0, 34_500)]), '"api";q=100;w=60', '"api";r=42;t=35'],
    ["5 with 1/s refill", decision(true, [bucket("login", 4, 0, 1000, 5, 1, 1000)]), '"login";q=5;w=5', '"login";r=4;t=1'],
    ["a denial points t at the retry", decision(false, [bucket("api", 0, 1200, 59_000)]), '"api";q=100;w=60', '"api";r=0;t=2'],
    [
      "two policies, the short one on retry",
      decision(false, [bucket("user", 3, 0, 10_000), bucket("tenant", 0, 400, 9_000, 10, 1, 1000)]),
      '"user";q=100;w=60, "tenant";q=10;w=10',
      '"user";r=3;t=10, "tenant";r=0;t=1',
    ],
    [
      "one policy twice gets distinct names",
      decision(true, [bucket("api", 1, 0, 600), bucket("api", 2, 0, 600)]),
      '"api";q=100;w=60, "api-2";q=100;w=60',
      '"api";r=1;t=1, "api-2";r=2;t=1',
    ],
    [
      "names are sf-Strings",
      decision(true, [bucket('we"ird\\näme', 1, 0, 0)]),
      '"we\\"ird\\\\n?me";q=100;w=60',
      '"we\\"ird\\\\n?me";r=1;t=0',
    ],
  ];
  it.each(cases)("%s", (_name, d, policy, state) => {
    expect(rateLimitHeaders(d)).toEqual({ "RateLimit-Policy": policy, RateLimit: state });
  });

  it("omits both fields when the decision carries no bucket (fail-open/fail-closed)", () => {
    expect(
      rateLimitHeaders({ allowed: true, remaining: 0, retryAfterMs: 0, resetAfterMs: 0, buckets: [], source: "fail-open" }),
    ).toBeUndefined();
  });
});
