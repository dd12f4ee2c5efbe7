// What both baseline servers share: a plain grpc-js service definition of tokenmesh.v1.RateLimiter
// (same proto, protobuf-es codecs), a status tally the bench reads over HTTP, and the line that
// tells the parent process which ports were bound.
//
// The baselines use grpc-js directly, not nice-grpc, so that "floor" is the cost of grpc-js and
// protobuf decoding alone: anything tokenmesh adds on top is then visible in the ratio.

import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { fromBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { type ConsumeRequest, ConsumeRequestSchema } from "../../src/gen/tokenmesh/v1/rate_limiter_pb.ts";

export interface StatusTally {
  ok: number;
  error: number;
}

export type RawHandler = (request: ConsumeRequest, consume: boolean) => Promise<Uint8Array> | Uint8Array;

function method(path: string): grpc.MethodDefinition<ConsumeRequest, Uint8Array> {
  return {
    path,
    requestStream: false,
    responseStream: false,
    requestSerialize: () => {
      throw new Error("server side only");
    },
    // QueryRequest has the same fields and field numbers as ConsumeRequest.
    requestDeserialize: (bytes: Buffer) => fromBinary(ConsumeRequestSchema, bytes),
    // Handlers hand back encoded bytes so a constant answer costs no encoding per call.
    responseSerialize: (value: Uint8Array) => Buffer.from(value.buffer, value.byteOffset, value.byteLength),
    responseDeserialize: (bytes: Buffer) => bytes,
  };
}

/** Starts a grpc-js server on 127.0.0.1:0 plus a stats endpoint, and prints `READY {...}`. */
export async function serveBaseline(name: string, handler: RawHandler): Promise<void> {
  const tally: StatusTally = { ok: 0, error: 0 };
  const wrap =
    (consume: boolean): grpc.handleUnaryCall<ConsumeRequest, Uint8Array> =>
    (call, callback) => {
      Promise.resolve()
        .then(() => handler(call.request, consume))
        .then(
          (bytes) => {
            tally.ok++;
            callback(null, bytes);
          },
          (err: unknown) => {
            tally.error++;
            callback({ code: grpc.status.INTERNAL, details: err instanceof Error ? err.message : String(err) });
          },
        );
    };
  const server = new grpc.Server();
  server.addService(
    { consume: method("/tokenmesh.v1.RateLimiter/Consume"), query: method("/tokenmesh.v1.RateLimiter/Query") },
    { consume: wrap(true), query: wrap(false) },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  await announce(name, port, tally, () => server.forceShutdown());
}

/**
 * Serves the status tally over HTTP on 127.0.0.1:0, prints `READY {name, port, statsPort}` and
 * exits on SIGTERM/SIGINT after `shutdown` (an open store connection would keep it alive).
 */
export async function announce(name: string, port: number, tally: StatusTally, shutdown: () => void): Promise<void> {
  const stats = createHttpServer((_req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(tally));
  });
  await new Promise<void>((resolve) => stats.listen(0, "127.0.0.1", resolve));
  const statsPort = (stats.address() as AddressInfo).port;
  process.stdout.write(`READY ${JSON.stringify({ name, port, statsPort })}\n`);
  const stop = (): void => {
    shutdown();
    stats.closeAllConnections();
    stats.close(() => process.exit(0));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
