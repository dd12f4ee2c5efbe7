// Baseline "floor-nice": the "floor" (constant answer, protobuf-es request decoding) served through
// nice-grpc on grpc-js, the stack the design card gives the server, with no middleware. The gap
// between the two floors is what nice-grpc itself costs per call (its per-call context: an
// AbortController, request and response Metadata, the async handler wrapper), so a tokenmesh
// figure can be read against the least the chosen stack allows, not only against bare grpc-js.

import { fromBinary } from "@bufbuild/protobuf";
import { createServer, type MethodDefinition } from "nice-grpc";
import { type ConsumeRequest, ConsumeRequestSchema } from "../../src/gen/tokenmesh/v1/rate_limiter_pb.ts";
import { constantAnswer } from "./constant-answer.ts";
import { announce, type StatusTally } from "./grpc-common.ts";

/** Same codecs as the grpc-js floor: protobuf-es decoding in, pre-encoded bytes out. */
const method = (path: string): MethodDefinition<never, ConsumeRequest, Uint8Array, never, false, false> => ({
  path,
  requestStream: false,
  responseStream: false,
  requestSerialize: () => {
    throw new Error("server side only");
  },
  requestDeserialize: (bytes) => fromBinary(ConsumeRequestSchema, bytes),
  responseSerialize: (bytes) => bytes,
  responseDeserialize: () => {
    throw new Error("server side only");
  },
  options: {},
});
const definition = { consume: method("/tokenmesh.v1.RateLimiter/Consume"), query: method("/tokenmesh.v1.RateLimiter/Query") } as const;

const tally: StatusTally = { ok: 0, error: 0 };
const answer = async (request: ConsumeRequest): Promise<Uint8Array> => {
  tally.ok++;
  return constantAnswer(request.decisions.length);
};
const server = createServer();
server.add(definition, { consume: answer, query: answer });
const port = await server.listen("127.0.0.1:0");
await announce("floor-nice", port, tally, () => server.forceShutdown());
