// Bad input over HTTP: the same field-naming message as over gRPC, with the status the protocol
// defines (Connect: invalid_argument is 400), no stack trace, no state changed, and bodies over
// the limit refused before they are read whole. Table-driven over a real server. Binary bodies
// (application/proto) are bad-binary-input.test.ts's.

import { connect } from "node:net";
import { ClientError } from "nice-grpc";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBadInputServer } from "../support/bad-input-server.ts";
import type { TestServer } from "../support/server.ts";

let t: TestServer;
let base: string;

beforeAll(async () => {
  ({ t, base } = await startBadInputServer());
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
      message: /^decisions\[0\]\.buckets\[0\]\.cost: must be a whole number in 0\.\.4294967295 \(uint32\) written in decimal/,
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

describe("Connect Consume/Query: integer fields read exactly, as ProtoJSON defines them", () => {
  const at = "decisions[0].buckets[0]";
  const cost = (text: string, key = "numbers") => `{"decisions":[{"buckets":[{"policy":"api","key":"${key}","cost":${text}}]}]}`;
  const limit = (fields: string, policy = "api") =>
    `{"decisions":[{"buckets":[{"policy":"${policy}","key":"numbers","limit":{${fields}}}]}]}`;
  const uint32 = (got: string, decimal = false) =>
    `${at}.cost: must be a whole number in 0..4294967295 (uint32)${decimal ? " written in decimal (ProtoJSON: no hex, sign or leading zeros)" : ""}, got ${got}`;
  const uint64 = (field: string, got: string, decimal = false) =>
    `${at}.limit.${field}: must be a whole number in 0..18446744073709551615 (uint64)${decimal ? " written in decimal (ProtoJSON: no hex, sign or leading zeros)" : ""}, got ${got}`;
  const post = (method: string, body: string) =>
    fetch(`${base}/tokenmesh.v1.RateLimiter/${method}`, { method: "POST", headers: { "content-type": "application/json" }, body });

  // protobuf-es alone took "0x10" as 16, "0b1", "+1" and "01" as 1, and saw 9007199254740993 as ...992.
  const refused: { name: string; body: string; message: string }[] = [
    { name: 'cost "0x10" (hex)', body: cost('"0x10"'), message: uint32('"0x10"', true) },
    { name: 'cost "0b1" (binary)', body: cost('"0b1"'), message: uint32('"0b1"', true) },
    { name: 'cost "+1" (plus sign)', body: cost('"+1"'), message: uint32('"+1"', true) },
    { name: 'cost "01" (leading zero)', body: cost('"01"'), message: uint32('"01"', true) },
    { name: 'cost " 1" (space)', body: cost('" 1"'), message: uint32('" 1"', true) },
    { name: 'cost "" (empty)', body: cost('""'), message: uint32('""', true) },
    { name: "cost 1.5 (fraction)", body: cost("1.5"), message: uint32("1.5") },
    { name: 'cost "1.5" (fraction, quoted)', body: cost('"1.5"'), message: uint32('"1.5"') },
    { name: "cost 15e-1 (fraction in exponent form)", body: cost("15e-1"), message: uint32("15e-1") },
    { name: "cost -1 (negative)", body: cost("-1"), message: uint32("-1") },
    { name: 'cost "-1" (negative, quoted)', body: cost('"-1"'), message: uint32('"-1"') },
    { name: "cost 2^32", body: cost("4294967296"), message: uint32("4294967296") },
    { name: "cost 2^53 + 1 (a JSON number that loses precision)", body: cost("9007199254740993"), message: uint32("9007199254740993") },
    { name: "cost 1e400 (beyond any double)", body: cost("1e400"), message: uint32("1e400") },
    { name: "cost true", body: cost("true"), message: uint32("true") },
    { name: "cost [1]", body: cost("[1]"), message: uint32("[1]") },
    { name: 'limit.capacity "0x10"', body: limit('"capacity":"0x10"'), message: uint64("capacity", '"0x10"', true) },
    { name: "limit.capacity -5", body: limit('"capacity":-5'), message: uint64("capacity", "-5") },
    { name: "limit.refillTokens 1.5", body: limit('"refillTokens":1.5'), message: uint64("refill_tokens", "1.5") },
    {
      name: "limit.refill_period_ms 2^64",
      body: limit('"refill_period_ms":18446744073709551616'),
      message: uint64("refill_period_ms", "18446744073709551616"),
    },
    {
      name: "limit.capacity 2^53 + 1: exact in the message, then the policy's bound",
      body: limit('"capacity":9007199254740993,"refillTokens":"1","refillPeriodMs":"1000"', "login"),
      message: `${at}.limit.capacity: must be 1..100 for policy "login", got 9007199254740993`,
    },
  ];
  for (const c of refused) {
    it(`${c.name}: 400 invalid_argument naming the field and its limit, over Consume and Query`, async () => {
      for (const method of ["Consume", "Query"]) {
        const r = await post(method, c.body);
        expect(r.status).toBe(400);
        expect(await r.json()).toEqual({ code: "invalid_argument", message: c.message });
      }
    });
  }

  it("changed no bucket", async () => {
    const q = await t.client.query({ decisions: [{ buckets: [{ policy: "api", key: "numbers" }] }] });
    expect(q.results[0]?.buckets[0]?.remaining).toBe(10n);
  });

  // ProtoJSON accepts exponent notation quoted and unquoted, and integers written as floats
  // (conformance: Int32FieldExponentialFormat, Int32FieldFloatTrailingZero).
  const accepted: { text: string; value: number }[] = [
    { text: "1e0", value: 1 },
    { text: '"2e0"', value: 2 },
    { text: "3.000", value: 3 },
    { text: "1E1", value: 10 },
    { text: '"0.4e1"', value: 4 },
    { text: "-0", value: 0 },
  ];
  for (const [i, c] of accepted.entries()) {
    it(`cost ${c.text} is ${c.value}`, async () => {
      const r = await post("Consume", cost(c.text, `exact-${i}`));
      if (c.value === 0) {
        expect(await r.json()).toEqual({ code: "invalid_argument", message: `${at}.cost: must be at least 1 (omit it for 1), got 0` });
        return;
      }
      expect(r.status).toBe(200);
      const q = await t.client.query({ decisions: [{ buckets: [{ policy: "api", key: `exact-${i}` }] }] });
      expect(q.results[0]?.buckets[0]?.remaining).toBe(BigInt(10 - c.value));
    });
  }

  it('an inline limit in exponent form, quoted ("1e1") or not (20.0e-1), is exact', async () => {
    const r = await post("Query", limit('"capacity":"1e1","refillTokens":20.0e-1,"refill_period_ms":"1000"', "login"));
    expect(r.status).toBe(200);
    const answer = (await r.json()) as { results: { buckets: { capacity: string; refillTokens: string }[] }[] };
    expect(answer.results[0]?.buckets[0]).toMatchObject({ capacity: "10", refillTokens: "2" });
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
