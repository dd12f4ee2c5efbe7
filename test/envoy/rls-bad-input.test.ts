// Bad ShouldRateLimit requests, sent by a client built from Envoy's own rls.proto: each gets
// INVALID_ARGUMENT naming the field and the limit, changes no bucket, and leaves the server
// serving. Table-driven over a real server on loopback.

import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EnvoyClient, type EnvoyRequest, envoyClient } from "../support/envoy-client.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

let t: TestServer;
let client: EnvoyClient;

beforeAll(async () => {
  t = await startTestServer({
    policies: { api: { capacity: 1, refill: 1, per: "1s" } },
    envoy: {
      domains: [
        { domain: "example", descriptors: [{ key: "generic_key", value: "demo", rate_limit: { unit: "second", requests_per_unit: 5 } }] },
      ],
    },
  });
  client = envoyClient(`127.0.0.1:${t.server.port}`);
});
afterAll(async () => {
  client.close();
  await t.close();
});

const demo = { entries: [{ key: "generic_key", value: "demo" }] };

const cases: { name: string; request: EnvoyRequest; message: string }[] = [
  { name: "no domain", request: { domain: "", descriptors: [demo] }, message: "domain: is required" },
  { name: "no descriptors", request: { domain: "example", descriptors: [] }, message: "descriptors: must hold 1..64 descriptors, got 0" },
  {
    name: "more descriptors than limits.maxDescriptorsPerRequest",
    request: { domain: "example", descriptors: Array.from({ length: 65 }, () => demo) },
    message: "descriptors: must hold 1..64 descriptors, got 65",
  },
  {
    name: "a descriptor without entries",
    request: { domain: "example", descriptors: [demo, { entries: [] }] },
    message: "descriptors[1].entries: must hold 1..16 entries, got 0",
  },
  {
    name: "deeper than 16 entries",
    request: { domain: "example", descriptors: [{ entries: Array.from({ length: 17 }, (_, i) => ({ key: `k${i}`, value: "v" })) }] },
    message: "descriptors[0].entries: must hold 1..16 entries, got 17",
  },
  {
    name: "an empty key",
    request: { domain: "example", descriptors: [{ entries: [{ key: "", value: "v" }] }] },
    message: "descriptors[0].entries[0].key: must be 1..256 bytes of UTF-8, got 0",
  },
  {
    name: "an over-long key",
    request: { domain: "example", descriptors: [{ entries: [{ key: "k".repeat(257), value: "v" }] }] },
    message: "descriptors[0].entries[0].key: must be 1..256 bytes of UTF-8, got 257",
  },
  {
    name: "values too long for a bucket key",
    request: { domain: "example", descriptors: [{ entries: [{ key: "generic_key", value: "v".repeat(300) }] }] },
    message: "descriptors[0].entries: values must total at most 256 bytes of UTF-8 as a bucket key, got 304",
  },
  {
    name: "a per-request limit override",
    request: { domain: "example", descriptors: [{ ...demo, limit: { requests_per_unit: 100, unit: "SECOND" } }] },
    message: "descriptors[0].limit: per-request limit overrides are not supported; configure the limit",
  },
];

describe("ShouldRateLimit: bad requests", () => {
  for (const c of cases) {
    it(`${c.name}: INVALID_ARGUMENT "${c.message.slice(0, 50)}"`, async () => {
      // The valid descriptor rides along first: it must not be charged.
      const err = (await client.shouldRateLimit(c.request).catch((e: unknown) => e)) as ServiceError;
      expect(err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
      expect(err.details).toBe(c.message);
    });
  }

  it("bytes that are not a RateLimitRequest: INVALID_ARGUMENT, not INTERNAL", async () => {
    const err = (await client.raw(new Uint8Array([0x0a, 0xff, 0xff])).catch((e: unknown) => e)) as ServiceError;
    expect(err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(err.details).toMatch(/^request: not a valid protobuf message: /);
  });

  // Bytes no stock client sends, built by hand: protobuf-es would throw on a string that is not
  // UTF-8 (naming no field) and keep the low 32 bits of a wider hits_addend.
  const len = (body: number[]) => [body.length, ...body];
  const text = (s: string) => [...new TextEncoder().encode(s)];
  const entry = (key: number[], value: number[]) => [0x0a, ...len(key), 0x12, ...len(value)];
  const descriptor = (...entries: number[][]) => entries.flatMap((e) => [0x0a, ...len(e)]);
  const request = (domain: number[], descriptors: number[][], hits?: number[]) =>
    new Uint8Array([
      0x0a,
      ...len(domain),
      ...descriptors.flatMap((d) => [0x12, ...len(d)]),
      ...(hits === undefined ? [] : [0x18, ...hits]),
    ]);
  const demoBytes = descriptor(entry(text("generic_key"), text("demo")));
  const lossy: { name: string; bytes: Uint8Array; message: string }[] = [
    ...[0xff, 0xfe, 0x80].map((b) => ({
      name: `a descriptor value \\x${b.toString(16)}`,
      bytes: request(text("example"), [demoBytes, descriptor(entry(text("generic_key"), [0x61, b]))]),
      message: `descriptors[1].entries[0].value: must be valid UTF-8; got 2 bytes that are not (61 ${b.toString(16)})`,
    })),
    {
      name: "a descriptor key that is not UTF-8",
      bytes: request(text("example"), [descriptor(entry(text("user"), text("a")), entry([0xc3, 0x28], text("b")))]),
      message: "descriptors[0].entries[1].key: must be valid UTF-8; got 2 bytes that are not (c3 28)",
    },
    {
      name: "a domain that is not UTF-8",
      bytes: request([0x65, 0xff], [demoBytes]),
      message: "domain: must be valid UTF-8; got 2 bytes that are not (65 ff)",
    },
    {
      name: "hits_addend 2^32 + 5 (not cut to 5)",
      bytes: request(text("example"), [demoBytes], [0x85, 0x80, 0x80, 0x80, 0x10]),
      message: "hits_addend: must be at most 4294967295 (a uint32), got 4294967301",
    },
  ];
  for (const c of lossy) {
    it(`${c.name}: INVALID_ARGUMENT naming the field`, async () => {
      const err = (await client.raw(c.bytes).catch((e: unknown) => e)) as ServiceError;
      expect(err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
      expect(err.details).toBe(c.message);
    });
  }

  it("changed no bucket, and the server still answers", async () => {
    const r = await client.shouldRateLimit({ domain: "example", descriptors: [demo] });
    expect(r.overall_code).toBe("OK");
    expect(r.statuses[0]?.limit_remaining).toBe(4);
  });

  it("an unknown domain is not an error: no limit applies (as ratelimit answers)", async () => {
    const r = await client.shouldRateLimit({ domain: "elsewhere", descriptors: [demo] });
    expect(r.overall_code).toBe("OK");
    expect(r.statuses).toEqual([{ code: "OK", current_limit: null, limit_remaining: 0, duration_until_reset: null, quota: null }]);
  });
});
