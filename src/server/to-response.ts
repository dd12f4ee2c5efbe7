// Maps the core's decision outcomes onto the wire messages.

import type { MessageInitShape } from "@bufbuild/protobuf";
import type { DecisionOutcome } from "../core/decision.ts";
import type { DecisionResultSchema } from "../gen/tokenmesh/v1/rate_limiter_pb.ts";
import type { ValidDecision } from "../limiter/limiter.ts";

export type DecisionResultInit = MessageInitShape<typeof DecisionResultSchema>;

export function toDecisionResult(decision: ValidDecision, outcome: DecisionOutcome): DecisionResultInit {
  return {
    allowed: outcome.allowed,
    retryAfterUs: BigInt(outcome.retryAfterUs),
    buckets: outcome.buckets.map((b, i) => {
      const rate = (decision[i] as ValidDecision[number]).rate;
      return {
        remaining: BigInt(b.remaining),
        retryAfterUs: BigInt(b.retryAfterUs),
        resetAfterUs: BigInt(b.resetAfterUs),
        capacity: BigInt(rate.capacity),
        refillTokens: BigInt(rate.refillTokens),
        refillPeriodMs: BigInt(Math.ceil(rate.refillPeriodUs / 1000)),
      };
    }),
  };
}
