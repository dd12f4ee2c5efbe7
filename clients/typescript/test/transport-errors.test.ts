// What the client makes of answers that are not a normal gRPC reply, from a real HTTP/2 server on
// loopback that answers each path its own way: an HTTP error status, a gRPC error status with a
// percent-encoded message, and a message whose length prefix lies. Each maps to a gRPC status
// as PROTOCOL-HTTP2.md says; a caller's error rejects the call, a service's error (INTERNAL) gets
// the fail mode and a log line naming it.

import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLimiter, Status, TokenmeshError } from "../src/index.ts";

type Answer = (stream: http2.ServerHttp2Stream) => void;

let server: http2.Http2Server;
let answer: Answer = () => {};
let address: string;

beforeAll(async () => {
  server = http2.createServer();
  server.on("stream", (stream) => {
    stream.resume();
    stream.on("end", () => answer(stream));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

async function rejection(reply: Answer): Promise<TokenmeshError> {
  answer = reply;
  const limiter = createLimiter({ address, deadlineMs: 2000, failMode: "closed", logger: { warn() {}, info() {} } });
  try {
    const error = await limiter.consume({ policy: "api", key: "k" }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(TokenmeshError);
    return error as TokenmeshError;
  } finally {
    await limiter.close();
  }
}

describe("answers that are not a normal gRPC reply", () => {
  it("maps an HTTP 404 to UNIMPLEMENTED", async () => {
    const err = await rejection((s) => {
      s.respond({ ":status": 404 });
      s.end();
    });
    expect(err.code).toBe(Status.UNIMPLEMENTED);
    expect(err.message).toMatch(/HTTP status 404 from a gRPC endpoint/);
  });

  it("passes a gRPC error status and its percent-encoded message through", async () => {
    const err = await rejection((s) => {
      s.respond(
        { ":status": 200, "content-type": "application/grpc", "grpc-status": "5", "grpc-message": "no%20such%20thing" },
        { endStream: true },
      );
    });
    expect(err.code).toBe(Status.NOT_FOUND);
    expect(err.message).toBe("NOT_FOUND: no such thing");
  });

  it("treats a message whose length prefix does not match what arrived as INTERNAL: fail mode, logged", async () => {
    answer = (s) => {
      s.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      s.on("wantTrailers", () => s.sendTrailers({ "grpc-status": "0" }));
      s.end(Buffer.from([0, 0, 0, 0, 9, 1, 2]));
    };
    const warned: object[] = [];
    const limiter = createLimiter({ address, failMode: "closed", logger: { warn: (fields) => warned.push(fields), info() {} } });
    try {
      expect((await limiter.consume({ policy: "api", key: "k" })).source).toBe("fail-closed");
      expect(warned).toEqual([
        expect.objectContaining({ code: "INTERNAL", details: expect.stringMatching(/holds 2 message bytes but its prefix says 9/) }),
      ]);
    } finally {
      await limiter.close();
    }
  });
});
