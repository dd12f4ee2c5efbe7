// Bad input over HTTP: the same field-naming message as over gRPC, with the status the protocol
// defines (Connect: invalid_argument is 400), no stack trace, no state changed, and bodies over
// the limit refused before they are read whole. Table-driven over a real server.

import { connect } from "node:net";
import { gzipSync } from "node:zlib";
import { fromBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { ClientError } from "nice-grpc";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConsumeResponseSchema, RateLimiter } from "../../src/gen/tokenmesh/v1/rate_limiter_pb.ts";
import { type RawBucket, rawRequest, rawUnary } from "../support/raw-grpc.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

let t: TestServer;
let base: string;

beforeAll(async () => {
  t = await startTestServer({
    policies: { api: { capacity: 10, refill: 1, per: "1s" }, login: { capacity: 5, refill: 1, per: "10s" } },
    limits: { maxMessageBytes: 65_536 },
  });
  base = `http://127.0.0.1:${t.server.httpPort}`;
});
afterAll(async () => {
  await t.close();
});

const ok = { policy: "api", key: "alice" };
const one = (bucket: Record<string, unknown>) => ({ decisions: [{ buckets: [bucket] }] });

/** Requests that are valid JSON but bad decisions: the gRPC door must say exactly the same. */
const decisionCases: { name: string; body: Record<string, unknown>; message: string }[] = [
  { name: "no decisions", body: {}, message: "decisions: must hold 1..1000 decisions, got 0" },
  { name: "no buckets", body: { decisions: [{}] }, message: "decisions[0].buckets: must hold 1..16 buckets, got 0" },
  {
    name: "empty key",
    body: one({ policy: "api", key: "" }),
    message: "decisions[0].buckets[0].key: must be 1..256 bytes of UTF-8, got 0",
  },
  {
    name: "unknown policy",
    body: one({ policy: "nope", key: "a" }),
    message: 'decisions[0].buckets[0].policy: unknown policy "nope" (known: api, login)',
  },
  { name: "cost 0", body: one({ ...ok, cost: 0 }), message: "decisions[0].buckets[0].cost: must be at least 1 (omit it for 1), got 0" },
  {
    name: "cost above capacity",
    body: one({ ...ok, cost: 11 }),
    message: "decisions[0].buckets[0].cost: 11 exceeds the bucket's capacity of 10, so it could never be allowed",
  },
  {
    name: "inline limit where the policy allows none",
    body: one({ ...ok, limit: { capacity: "5", refillTokens: "1", refillPeriodMs: "1000" } }),
    message: 'decisions[0].buckets[0].limit: policy "api" does not accept inline limits (set policies.api.inline in the server config)',
  },
  {
    name: "one bucket twice",
    body: { decisions: [{ buckets: [ok, ok] }] },
    message: "decisions[0].buckets[1]: names the same bucket as buckets[0]; put the total cost on one entry",
  },
];

describe("Connect Consume: bad decisions", () => {
  for (const c of decisionCases) {
    it(`${c.name}: 400 invalid_argument, the gRPC door's message`, async () => {
      const r = await fetch(`${base}/tokenmesh.v1.RateLimiter/Consume`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(c.body),
      });
      expect(r.status).toBe(400);
      expect(await r.json()).toEqual({ code: "invalid_argument", message: c.message });
      const grpc = await t.client.consume(c.body as Parameters<typeof t.client.consume>[0]).catch((e: unknown) => e);
      expect(grpc).toBeInstanceOf(ClientError);
      expect((grpc as ClientError).details).toBe(c.message);
    });
  }

  it("changed no bucket", async () => {
    const q = await t.client.query({ decisions: [{ buckets: [ok] }] });
    expect(q.results[0]?.buckets[0]?.remaining).toBe(10n);
  });
});

describe("Connect Consume: bodies that are not a request", () => {
  const bodies: { name: string; body: string; message: RegExp }[] = [
    { name: "not JSON", body: "{decisions", message: /^cannot decode message tokenmesh\.v1\.ConsumeRequest from JSON/ },
    // Unknown fields are skipped (protobuf's rule, so newer clients work), which leaves none here.
    { name: "an unknown field only", body: '{"decision": []}', message: /^decisions: must hold 1\.\.1000 decisions, got 0$/ },
    {
      name: "a string for a number",
      body: '{"decisions":[{"buckets":[{"policy":"api","key":"a","cost":"x"}]}]}',
      message: /cannot decode/,
    },
  ];
  for (const c of bodies) {
    it(`${c.name}: 400 invalid_argument, no stack trace`, async () => {
      const r = await fetch(`${base}/tokenmesh.v1.RateLimiter/Consume`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: c.body,
      });
      expect(r.status).toBe(400);
      const body = (await r.json()) as { code: string; message: string };
      expect(body.code).toBe("invalid_argument");
      expect(body.message).toMatch(c.message);
      expect(JSON.stringify(body)).not.toMatch(/\n\s+at /);
    });
  }

  it("a JSON body with bytes that are not UTF-8 (keys \\xff, \\xfe, \\x80): 400, and no bucket shared or charged", async () => {
    for (const b of [0xff, 0xfe, 0x80]) {
      const body = Buffer.concat([
        Buffer.from('{"decisions":[{"buckets":[{"policy":"api","key":"'),
        Buffer.from([b]),
        Buffer.from('"}]}]}'),
      ]);
      const r = await fetch(`${base}/tokenmesh.v1.RateLimiter/Consume`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      expect(r.status).toBe(400);
      expect(await r.json()).toEqual({
        code: "invalid_argument",
        message: "request body: JSON must be valid UTF-8 (RFC 8259); it holds bytes that are not",
      });
    }
    const q = await t.client.query({ decisions: [{ buckets: [{ policy: "api", key: "\ufffd" }] }] });
    expect(q.results[0]?.buckets[0]?.remaining).toBe(10n);
  });

  it("refuses a body over limits.maxMessageBytes from its Content-Length, before reading it", async () => {
    // Announce 10 MB, send nothing more: the answer must come without the body.
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(t.server.httpPort as number, "127.0.0.1");
      let text = "";
      socket.on("data", (d) => {
        text += d.toString();
        if (text.includes("\r\n\r\n") && text.includes("}")) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on("error", reject);
      socket.setTimeout(5_000, () => reject(new Error("no answer without the body")));
      socket.write(
        "POST /tokenmesh.v1.RateLimiter/Consume HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10000000\r\n\r\n{",
      );
    });
    expect(answer).toMatch(/^HTTP\/1\.1 429 /);
    expect(answer).toMatch(/"code":"resource_exhausted"/);
    expect(answer).toMatch(/65536/);
  });

  it("refuses a chunked body once it passes the limit", async () => {
    const big = JSON.stringify({ decisions: Array.from({ length: 3000 }, (_, i) => ({ buckets: [{ policy: "api", key: `k${i}` }] })) });
    expect(big.length).toBeGreaterThan(65_536);
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
    const r = await fetch(`${base}/tokenmesh.v1.RateLimiter/Consume`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: stream,
      duplex: "half",
    } as RequestInit);
    expect(r.status).toBe(429);
    expect(((await r.json()) as { code: string }).code).toBe("resource_exhausted");
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });
});

describe("GET /v1/check: bad queries name the parameter", () => {
  const cases: { query: string; message: string }[] = [
    { query: "key=a", message: "policy: is required" },
    { query: "policy=api", message: "key: must be 1..256 bytes of UTF-8, got 0" },
    { query: "policy=nope&key=a", message: 'policy: unknown policy "nope" (known: api, login)' },
    { query: `policy=api&key=${"x".repeat(257)}`, message: "key: must be 1..256 bytes of UTF-8, got 257" },
    { query: "policy=api&key=a&cost=0", message: "cost: must be at least 1 (omit it for 1), got 0" },
    { query: "policy=api&key=a&cost=11", message: "cost: 11 exceeds the bucket's capacity of 10, so it could never be allowed" },
    { query: "policy=api&key=a&cost=-1", message: 'cost: must be a whole number in 1..4294967295, got "-1"' },
    { query: "policy=api&key=a&cost=1.5", message: 'cost: must be a whole number in 1..4294967295, got "1.5"' },
    { query: "policy=api&key=a&cots=2", message: "cots: unknown query parameter (expected policy, key and optionally cost)" },
    { query: "policy=api&key=a&key=b", message: "key: given more than once" },
    // Each would be U+FFFD after URLSearchParams, one bucket for all three.
    { query: "policy=api&key=%FF", message: "key: must be valid UTF-8; got 1 bytes that are not (ff)" },
    { query: "policy=api&key=%FE", message: "key: must be valid UTF-8; got 1 bytes that are not (fe)" },
    { query: "policy=api&key=a%80", message: "key: must be valid UTF-8; got 2 bytes that are not (61 80)" },
    { query: "policy=ap%C3%28i&key=a", message: "policy: must be valid UTF-8; got 5 bytes that are not (61 70 c3 28 69)" },
    { query: "cost=1&%FF=a", message: "query parameter name: must be valid UTF-8; got 1 bytes that are not (ff)" },
    { query: "policy=api&key=a&cost=4294967301", message: 'cost: must be a whole number in 1..4294967295, got "4294967301"' },
  ];
  for (const c of cases) {
    it(`?${c.query.slice(0, 40)}: 400 "${c.message.slice(0, 40)}"`, async () => {
      const r = await fetch(`${base}/v1/check?${c.query}`);
      expect(r.status).toBe(400);
      expect(await r.json()).toEqual({ code: "invalid_argument", message: c.message });
    });
  }

  it("changed no bucket", async () => {
    const r = await fetch(`${base}/v1/check?policy=api&key=a`);
    expect(await r.json()).toMatchObject({ allowed: true, remaining: 9 });
  });
});

describe("Connect Consume/Query in binary (application/proto): the gRPC door's strict decoder", () => {
  const B = (hex: string): Uint8Array => Uint8Array.from(hex.split(" ").map((h) => Number.parseInt(h, 16)));
  const at = "decisions[0].buckets[0]";
  const postProto = (method: string, body: Uint8Array, headers: Record<string, string> = {}) =>
    fetch(`${base}/tokenmesh.v1.RateLimiter/${method}`, {
      method: "POST",
      headers: { "content-type": "application/proto", ...headers },
      body,
    });
  const remaining = async (policy: string, key: string): Promise<bigint | undefined> => {
    const q = await t.client.query({ decisions: [{ buckets: [{ policy, key }] }] });
    return q.results[0]?.buckets[0]?.remaining;
  };
  const valid = rawRequest([{ policy: "api", key: "truncated" }]);

  // `touches`: the bucket a lenient decoder would have charged (U+FFFD for each bad key, the
  // low 32 bits of a cost on key "wide"), which must still be full afterwards.
  const cases: { name: string; body: Uint8Array; message: string | RegExp; touches?: RawBucket }[] = [
    {
      name: "key byte 0xff",
      body: rawRequest([{ policy: "api", key: B("ff") }]),
      message: `${at}.key: must be valid UTF-8; got 1 bytes that are not (ff)`,
    },
    {
      name: "key bytes 61 fe",
      body: rawRequest([{ policy: "api", key: B("61 fe") }]),
      message: `${at}.key: must be valid UTF-8; got 2 bytes that are not (61 fe)`,
    },
    {
      name: "key byte 0x80",
      body: rawRequest([{ policy: "api", key: B("80") }]),
      message: `${at}.key: must be valid UTF-8; got 1 bytes that are not (80)`,
    },
    {
      name: "policy not UTF-8",
      body: rawRequest([{ policy: B("61 70 ff"), key: "k" }]),
      message: `${at}.policy: must be valid UTF-8; got 3 bytes that are not (61 70 ff)`,
    },
    {
      name: "cost 2^32 + 5 (a uint32 would keep 5)",
      body: rawRequest([{ policy: "api", key: "wide", cost: 2n ** 32n + 5n }]),
      message: `${at}.cost: must be at most 4294967295 (a uint32), got 4294967301`,
    },
    {
      name: "cost 2^64 - 1",
      body: rawRequest([{ policy: "api", key: "wide", cost: 2n ** 64n - 1n }]),
      message: `${at}.cost: must be at most 4294967295 (a uint32), got 18446744073709551615`,
    },
    {
      name: "cost 2^32 - 1 (fits, so the capacity check speaks)",
      body: rawRequest([{ policy: "api", key: "wide", cost: 2n ** 32n - 1n }]),
      message: `${at}.cost: 4294967295 exceeds the bucket's capacity of 10, so it could never be allowed`,
    },
    { name: "an empty body", body: new Uint8Array(0), message: "decisions: must hold 1..1000 decisions, got 0" },
    { name: "truncated by one byte", body: valid.subarray(0, valid.length - 1), message: /^request: not a valid protobuf message: / },
    { name: "a length past the end", body: B("0a 7f 0a 02"), message: /^request: not a valid protobuf message: / },
    {
      name: "a varint that never ends",
      body: B("10 ff ff ff ff ff ff ff ff ff ff ff"),
      message: /^request: not a valid protobuf message: /,
    },
    { name: "wire type 7 (none such)", body: B("0f 00"), message: /^request: not a valid protobuf message: / },
  ];

  for (const c of cases) {
    it(`${c.name}: 400 invalid_argument, the gRPC door's message, over Consume and Query`, async () => {
      const grpc = await rawUnary(`127.0.0.1:${t.server.port}`, "/tokenmesh.v1.RateLimiter/Consume", c.body);
      expect(grpc.code).toBe(3);
      expect(grpc.message).toMatch(c.message);
      for (const method of ["Consume", "Query"]) {
        const r = await postProto(method, c.body);
        expect(r.status).toBe(400);
        expect(r.headers.get("content-type")).toBe("application/json");
        expect(await r.json()).toEqual({ code: "invalid_argument", message: grpc.message });
      }
    });
  }

  it('changed no bucket (U+FFFD, key "wide", key "truncated", key "k")', async () => {
    for (const key of ["\ufffd", "a\ufffd", "wide", "truncated", "k"]) expect(await remaining("api", key)).toBe(10n);
  });

  it("a valid binary Consume is served and charged: 200 application/proto", async () => {
    const r = await postProto("Consume", rawRequest([{ policy: "api", key: "binary-ok", cost: 3n }]));
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("application/proto");
    const answer = fromBinary(ConsumeResponseSchema, new Uint8Array(await r.arrayBuffer()));
    expect(answer.results[0]?.allowed).toBe(true);
    expect(answer.results[0]?.buckets[0]?.remaining).toBe(7n);
    expect(await remaining("api", "binary-ok")).toBe(7n);
  });

  it("a gzip body (content-encoding) is decoded strictly too", async () => {
    const bad = await postProto("Consume", gzipSync(rawRequest([{ policy: "api", key: B("ff") }])), { "content-encoding": "gzip" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toBe(`${at}.key: must be valid UTF-8; got 1 bytes that are not (ff)`);
    const ok = await postProto("Consume", gzipSync(rawRequest([{ policy: "api", key: "gzipped" }])), { "content-encoding": "gzip" });
    expect(ok.status).toBe(200);
    expect(await remaining("api", "gzipped")).toBe(9n);
  });

  it("refuses an unknown content-encoding and a malformed connect-timeout-ms, charging nothing", async () => {
    const body = rawRequest([{ policy: "api", key: "headers" }]);
    const enc = await postProto("Consume", body, { "content-encoding": "zstd" });
    expect(enc.status).toBe(501);
    expect(await enc.json()).toEqual({
      code: "unimplemented",
      message: 'content-encoding: "zstd" is not supported (supported: gzip, br, identity)',
    });
    const timeout = await postProto("Consume", body, { "connect-timeout-ms": "soon" });
    expect(timeout.status).toBe(400);
    expect(await timeout.json()).toEqual({
      code: "invalid_argument",
      message: 'connect-timeout-ms: must be 1..10 digits of milliseconds, got "soon"',
    });
    const version = await postProto("Consume", body, { "connect-protocol-version": "2" });
    expect(version.status).toBe(400);
    expect(await version.json()).toEqual({ code: "invalid_argument", message: 'connect-protocol-version: must be "1", got "2"' });
    expect(await remaining("api", "headers")).toBe(10n);
    // A deadline of 0 ms has passed on arrival: refused before any token is taken.
    const late = await postProto("Consume", body, { "connect-timeout-ms": "0" });
    expect(late.status).toBe(504);
    expect(((await late.json()) as { code: string }).code).toBe("deadline_exceeded");
    expect(await remaining("api", "headers")).toBe(10n);
    expect((await postProto("Consume", body, { "connect-protocol-version": "1", "connect-timeout-ms": "5000" })).status).toBe(200);
    expect(await remaining("api", "headers")).toBe(9n);
  });

  it("refuses a body over limits.maxMessageBytes: 429 resource_exhausted, then still serves", async () => {
    const big = rawRequest(Array.from({ length: 5000 }, (_, i) => ({ policy: "api", key: `big-${i}` })));
    expect(big.length).toBeGreaterThan(65_536);
    const r = await postProto("Consume", big);
    expect(r.status).toBe(429);
    expect(await r.json()).toEqual({
      code: "resource_exhausted",
      message: `request body: ${big.length} bytes is more than limits.maxMessageBytes (65536)`,
    });
    const chunked = await fetch(`${base}/tokenmesh.v1.RateLimiter/Consume`, {
      method: "POST",
      headers: { "content-type": "application/proto" },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(big);
          controller.close();
        },
      }),
      duplex: "half",
    } as RequestInit);
    expect(chunked.status).toBe(429);
    expect(await chunked.json()).toEqual({
      code: "resource_exhausted",
      message: "request body: longer than limits.maxMessageBytes (65536)",
    });
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect(await remaining("api", "big-0")).toBe(10n);
  });

  it("a stock Connect client in binary works end to end, and gets the strict errors", async () => {
    const client = createClient(RateLimiter, createConnectTransport({ baseUrl: base, httpVersion: "1.1", useBinaryFormat: true }));
    const ok = await client.consume({ decisions: [{ buckets: [{ policy: "login", key: "connect-client" }] }] });
    expect(ok.results[0]?.buckets[0]?.remaining).toBe(4n);
    const q = await client.query({ decisions: [{ buckets: [{ policy: "login", key: "connect-client" }] }] });
    expect(q.results[0]?.buckets[0]?.remaining).toBe(4n);
    const refused = await client.consume({ decisions: [{ buckets: [{ policy: "nope", key: "a" }] }] }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 3, rawMessage: `${at}.policy: unknown policy "nope" (known: api, login)` });
  });

  it("gRPC and gRPC-web bodies are not parsed on this port (415): their clients use the gRPC port", async () => {
    const message = rawRequest([{ policy: "api", key: B("ff") }]);
    const frame = Buffer.alloc(5 + message.length);
    frame.writeUInt32BE(message.length, 1);
    frame.set(message, 5);
    for (const type of ["application/grpc-web+proto", "application/grpc-web", "application/grpc"]) {
      const r = await fetch(`${base}/tokenmesh.v1.RateLimiter/Consume`, { method: "POST", headers: { "content-type": type }, body: frame });
      expect(r.status).toBe(415);
      await r.arrayBuffer();
    }
    expect(await remaining("api", "\ufffd")).toBe(10n);
  });

  it("a client that leaves mid-body is no failure: nothing charged, the server keeps serving", async () => {
    const body = rawRequest([{ policy: "api", key: "left" }]);
    await new Promise<void>((resolve, reject) => {
      const socket = connect(t.server.httpPort as number, "127.0.0.1", () => {
        socket.write(
          `POST /tokenmesh.v1.RateLimiter/Consume HTTP/1.1\r\nhost: x\r\ncontent-type: application/proto\r\ncontent-length: ${body.length + 10}\r\n\r\n`,
        );
        socket.write(body, () => {
          socket.destroy();
          resolve();
        });
      });
      socket.on("error", reject);
    });
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect(await remaining("api", "left")).toBe(10n);
  });
});
