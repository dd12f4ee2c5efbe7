// gRPC door of tokenmesh.v1.RateLimiter: the hand-written decoder's plain requests go to the
// decision service, and its answers to the hand-written encoder (rate-limiter-definition.ts).

import type { CallContext } from "nice-grpc";
import { callTimingOf } from "./call-deadline.ts";
import type { DecisionService } from "./decision-service.ts";
import type { DecodedRequest } from "./request-decoder.ts";
import type { DecisionAnswers } from "./response-encoder.ts";

export function rateLimiterService(decisions: DecisionService) {
  return {
    async consume(request: DecodedRequest, context?: CallContext): Promise<DecisionAnswers> {
      return decisions.consume(request, callTimingOf(context));
    },
    async query(request: DecodedRequest, context?: CallContext): Promise<DecisionAnswers> {
      return decisions.query(request, request.includeReplicas, callTimingOf(context));
    },
  };
}
