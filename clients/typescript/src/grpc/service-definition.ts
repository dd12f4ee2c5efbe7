// Adapts the generated protobuf-es v2 RateLimiter descriptor to a nice-grpc service definition.
//
// nice-grpc ships adapters for grpc-js and ts-proto but not for protobuf-es v2. The server keeps
// its own adapter; this package is published alone, so it carries this small unary-only one.

import type { DescMessage } from "@bufbuild/protobuf";
import { create, fromBinary, type MessageInitShape, type MessageShape, toBinary } from "@bufbuild/protobuf";
import type { MethodDefinition } from "nice-grpc";
import { RateLimiter } from "../gen/tokenmesh/v1/rate_limiter_pb.js";

type Unary<I extends DescMessage, O extends DescMessage> = MethodDefinition<
  MessageInitShape<I>,
  MessageShape<I>,
  MessageInitShape<O>,
  MessageShape<O>,
  false,
  false
>;

function unary<I extends DescMessage, O extends DescMessage>(method: { name: string; input: I; output: O }): Unary<I, O> {
  const { input, output } = method;
  return {
    path: `/${RateLimiter.typeName}/${method.name}`,
    requestStream: false,
    responseStream: false,
    // create() fills defaults into a plain init object and returns a full message unchanged.
    requestSerialize: (value) => toBinary(input, create(input, value)),
    requestDeserialize: (bytes) => fromBinary(input, bytes),
    responseSerialize: (value) => toBinary(output, create(output, value)),
    responseDeserialize: (bytes) => fromBinary(output, bytes),
    options: {},
  };
}

/** Built on demand (not at import time) so importing the package does no work. */
export function rateLimiterDefinition() {
  return {
    consume: unary(RateLimiter.method.consume),
    // Query takes no token: the retry middleware may retry it (see transport.ts).
    query: unary(RateLimiter.method.query),
  } as const;
}

export type RateLimiterDefinition = ReturnType<typeof rateLimiterDefinition>;
