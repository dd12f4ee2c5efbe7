// gRPC handlers of tokenmesh.v1.RateLimiter: validate, decide at the current time, answer.

import type { Policy } from "../config/load.ts";
import type { ConsumeRequest, QueryRequest } from "../gen/tokenmesh/v1/rate_limiter_pb.ts";
import type { Limiter, ValidDecision } from "../limiter/limiter.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { Clock } from "./clock.ts";
import { type DecisionResultInit, toDecisionResult } from "./to-response.ts";
import { type RequestLimits, validateDecisions } from "./validate-request.ts";

export interface RateLimiterDeps {
  readonly limiter: Limiter;
  readonly policies: ReadonlyMap<string, Policy>;
  readonly limits: RequestLimits;
  readonly clock: Clock;
  readonly metrics: Metrics;
}

export function rateLimiterService(deps: RateLimiterDeps) {
  const { limiter, policies, limits, clock, metrics } = deps;

  function run(request: ConsumeRequest | QueryRequest, consume: boolean): { results: DecisionResultInit[] } {
    const validated = validateDecisions(request.decisions, policies, limits);
    if (!validated.ok) throw validated.error;
    const decisions: ValidDecision[] = validated.decisions;
    const outcomes = limiter.run(decisions, clock(), consume);
    const results: DecisionResultInit[] = new Array(outcomes.length);
    for (let i = 0; i < outcomes.length; i++) {
      const decision = decisions[i] as ValidDecision;
      const outcome = outcomes[i] as (typeof outcomes)[number];
      if (consume) for (const target of decision) metrics.countDecision(target.policy, outcome.allowed);
      results[i] = toDecisionResult(decision, outcome);
    }
    return { results };
  }

  return {
    async consume(request: ConsumeRequest) {
      return run(request, true);
    },
    async query(request: QueryRequest) {
      return run(request, false);
    },
  };
}
