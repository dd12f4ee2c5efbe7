// The server's definition of tokenmesh.v1.RateLimiter: paths and stream flags from the generic
// adapter, and hand-written codecs for the two hot messages (see request-decoder.ts and
// response-encoder.ts for why).

import { RateLimiter } from "../gen/tokenmesh/v1/rate_limiter_pb.ts";
import { niceDefinition } from "../grpc/service-definition.ts";
import { type DecodedRequest, decodeOrMark } from "./request-decoder.ts";
import { type DecisionAnswers, encodeDecisionAnswers } from "./response-encoder.ts";

const generic = niceDefinition(RateLimiter);

export const rateLimiterServerDefinition = {
  consume: {
    ...generic.consume,
    requestDeserialize: (bytes: Uint8Array): DecodedRequest => decodeOrMark(bytes),
    responseSerialize: (answers: DecisionAnswers): Uint8Array => encodeDecisionAnswers(answers),
  },
  query: {
    ...generic.query,
    requestDeserialize: (bytes: Uint8Array): DecodedRequest => decodeOrMark(bytes),
    responseSerialize: (answers: DecisionAnswers): Uint8Array => encodeDecisionAnswers(answers),
  },
} as const;
