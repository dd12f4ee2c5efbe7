// gRPC handlers of tokenmesh.v1.RateLimiter: validate, decide at the current time, answer.

import type { Policy } from "../config/load.ts";
import type { Limiter, ValidDecision } from "../limiter/limiter.ts";
import type { DecisionAudit } from "../log/decision-audit.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { Clock } from "./clock.ts";
import { invalidArgument, RequestError, Status } from "./errors.ts";
import type { DecodedRequest } from "./request-decoder.ts";
import type { DecisionAnswers } from "./response-encoder.ts";
import { type RequestLimits, validateDecisions } from "./validate-request.ts";

export interface RateLimiterDeps {
  readonly limiter: Limiter;
  readonly policies: ReadonlyMap<string, Policy>;
  readonly limits: RequestLimits;
  readonly clock: Clock;
  readonly metrics: Metrics;
  /**
   * False while a new mesh incarnation warms up (first sync with a peer, or the warm-up timeout):
   * answering before it would hand out a fresh capacity per key after every restart.
   */
  readonly ready: () => boolean;
  /** Present when the config turns the audit log on. */
  readonly audit?: DecisionAudit;
}

export function rateLimiterService(deps: RateLimiterDeps) {
  const { limiter, policies, limits, clock, metrics, audit } = deps;

  function run(request: DecodedRequest, consume: boolean, includeReplicas = false): DecisionAnswers {
    if (!deps.ready())
      throw new RequestError(
        Status.UNAVAILABLE,
        "replica",
        "warming up: syncing with its peers before admitting (at most mesh.warmupTimeout); try another replica",
      );
    if (request.malformed !== undefined) throw invalidArgument("request", `not a valid protobuf message: ${request.malformed}`);
    const validated = validateDecisions(request.decisions, policies, limits);
    if (!validated.ok) throw validated.error;
    const decisions: ValidDecision[] = validated.decisions;
    const now = clock();
    const outcomes = limiter.run(decisions, now, consume);
    const shares = limiter.store.shares;
    if (includeReplicas && shares !== undefined) {
      const store = limiter.store;
      return { decisions, outcomes, shares: decisions.map((d) => d.map((t) => shares.call(store, t.id, now))) };
    }
    if (consume) {
      for (let i = 0; i < outcomes.length; i++) {
        const allowed = (outcomes[i] as (typeof outcomes)[number]).allowed;
        for (const target of decisions[i] as ValidDecision) metrics.countDecision(target.policy, allowed);
        audit?.record(decisions[i] as ValidDecision, allowed);
      }
    }
    return { decisions, outcomes };
  }

  return {
    async consume(request: DecodedRequest) {
      return run(request, true);
    },
    async query(request: DecodedRequest) {
      return run(request, false, request.includeReplicas);
    },
  };
}
