// The server's definition of tokenmesh.v1.RateLimiter: the generic adapter for requests, and the
// hand-written encoder for responses (see response-encoder.ts for why).

import { RateLimiter } from "../gen/tokenmesh/v1/rate_limiter_pb.ts";
import { niceDefinition } from "../grpc/service-definition.ts";
import { type DecisionAnswers, encodeDecisionAnswers } from "./response-encoder.ts";

const generic = niceDefinition(RateLimiter);

export const rateLimiterServerDefinition = {
  consume: {
    ...generic.consume,
    responseSerialize: (answers: DecisionAnswers): Uint8Array => encodeDecisionAnswers(answers),
  },
  query: {
    ...generic.query,
    responseSerialize: (answers: DecisionAnswers): Uint8Array => encodeDecisionAnswers(answers),
  },
} as const;
