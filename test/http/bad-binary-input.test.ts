// Binary bodies (application/proto) over the HTTP door: read by the gRPC door's strict decoder,
// so each refusal is 400 invalid_argument with the gRPC door's message, naming the field, and
// nothing is charged. Table-driven over a real server (the JSON side: bad-input.test.ts).

import { connect } from "node:net";
import { gzipSync } from "node:zlib";
import { fromBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConsumeResponseSchema, RateLimiter } from "../../src/gen/tokenmesh/v1/rate_limiter_pb.ts";
import { startBadInputServer } from "../support/bad-input-server.ts";
import { type RawBucket, rawRequest, rawUnary } from "../support/raw-grpc.ts";
import type { TestServer } from "../support/server.ts";

let t: TestServer;
let base: string;

beforeAll(async () => {
  ({ t, base } = await startBadInputServer());
});
afterAll(async () => {
  await t.close();
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
