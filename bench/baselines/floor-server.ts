// Baseline "floor": the same proto on plain grpc-js, answering every decision with a constant
// result. It decodes the request (any real service must) and returns pre-encoded bytes, so its
// cost per call is grpc-js plus protobuf decoding: what no limiter on grpc-js can go below.

import { create, toBinary } from "@bufbuild/protobuf";
import { ConsumeResponseSchema } from "../../src/gen/tokenmesh/v1/rate_limiter_pb.ts";
import { serveBaseline } from "./grpc-common.ts";

const cache = new Map<number, Uint8Array>();

/** One constant result per decision, the size of a real single-bucket answer. */
function constantAnswer(decisions: number): Uint8Array {
  let bytes = cache.get(decisions);
  if (bytes === undefined) {
    const result = {
      allowed: true,
      retryAfterUs: 0n,
      buckets: [{ remaining: 999n, retryAfterUs: 0n, resetAfterUs: 1000n, capacity: 1000n, refillTokens: 1000n, refillPeriodMs: 1000n }],
    };
    bytes = toBinary(ConsumeResponseSchema, create(ConsumeResponseSchema, { results: Array.from({ length: decisions }, () => result) }));
    cache.set(decisions, bytes);
  }
  return bytes;
}

await serveBaseline("floor", (request) => constantAnswer(request.decisions.length));
