// The floors' answer: one constant result per decision, the size of a real single-bucket answer,
// encoded once per batch size, so a floor's cost per call has no encoding in it.

import { create, toBinary } from "@bufbuild/protobuf";
import { ConsumeResponseSchema } from "../../src/gen/tokenmesh/v1/rate_limiter_pb.ts";

const cache = new Map<number, Uint8Array>();

export function constantAnswer(decisions: number): Uint8Array {
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
