// The one decision path behind every door (gRPC, Envoy's RateLimitService, HTTP/JSON): readiness,
// validation against the policies in force, all-or-nothing limiting at one time, metrics and
// the audit log. It takes plain decisions and returns plain results; the adapters only translate
// their wire formats, so a request gets the same checks and the same error text whichever door
// it came in by. Refused requests are logged at debug where they are answered: by the gRPC
// middleware (both gRPC services) and by the HTTP door, in the same shape.

import { Counter } from "prom-client";
import type { PolicySnapshot } from "../config/load.ts";
import type { DecisionOutcome } from "../core/decision.ts";
import {
  answerDescriptors,
  type DescriptorAnswer,
  type DescriptorLimits,
  type DescriptorRequest,
  planDescriptors,
} from "../envoy/descriptor-plan.ts";
import type { Limiter, ValidDecision } from "../limiter/limiter.ts";
import type { DecisionAudit } from "../log/decision-audit.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { CallTiming } from "./call-deadline.ts";
import type { CallGuard } from "./call-guard.ts";
import type { Clock } from "./clock.ts";
import { invalidArgument, Status, TokenmeshError } from "./errors.ts";
import type { DecisionAnswers } from "./response-encoder.ts";
import { type PlainDecision, type RequestLimits, validateDecisions } from "./validate-request.ts";

/** Consume/Query as plain data (the gRPC decoder's output, or a Connect/HTTP request). */
export interface DecisionRequest {
  readonly decisions: readonly PlainDecision[];
  /** Set when the bytes were not a valid message. */
  readonly malformed?: string;
}

export type Readiness = { readonly ready: true } | { readonly ready: false; readonly reason: string };

export interface DecisionServiceDeps {
  readonly limiter: Limiter;
  /**
   * The limits in force, read once per request: a live reload swaps the snapshot and every
   * request is validated and answered against one snapshot.
   */
  readonly policies: () => PolicySnapshot;
  readonly limits: RequestLimits & DescriptorLimits;
  readonly clock: Clock;
  readonly metrics: Metrics;
  /**
   * True while a new mesh incarnation warms up (first sync with a peer, or the warm-up timeout):
   * answering before it would hand out a fresh capacity per key after every restart.
   */
  readonly warmingUp: () => boolean;
  /** Present when the config turns the audit log on (Consume through any door but Envoy's). */
  readonly audit?: DecisionAudit;
  /** Deadlines, cancellation and load shedding, checked on arrival and before tokens are taken. */
  readonly guard?: CallGuard;
}

const WARMING_UP = "warming up: syncing with its peers before admitting (at most mesh.warmupTimeout); try another replica";
const DRAINING = "draining: shutting down; try another replica";

export class DecisionService {
  readonly #deps: DecisionServiceDeps;
  readonly #shadowDenials: Counter<"rule">;
  #draining = false;

  constructor(deps: DecisionServiceDeps) {
    this.#deps = deps;
    this.#shadowDenials = new Counter({
      name: "tokenmesh_shadow_mode_denials_total",
      help: "Envoy rate limit descriptors in shadow_mode that were over limit and answered OK, by rule (domain.key_value...).",
      labelNames: ["rule"] as const,
      registers: [deps.metrics.registry],
    });
  }

  /** Whether this replica admits: for /ready and health (warming up or draining say why not). */
  readiness(): Readiness {
    if (this.#draining) return { ready: false, reason: DRAINING };
    if (this.#deps.warmingUp()) return { ready: false, reason: WARMING_UP };
    return { ready: true };
  }

  /** Shutdown began: readiness says so; calls already accepted are still answered. */
  drain(): void {
    this.#draining = true;
  }

  consume(request: DecisionRequest, call?: CallTiming): DecisionAnswers {
    return this.#decide(request, true, false, call);
  }

  query(request: DecisionRequest, includeReplicas: boolean, call?: CallTiming): DecisionAnswers {
    return this.#decide(request, false, includeReplicas, call);
  }

  /** Envoy's ShouldRateLimit: descriptors matched against the domains in force, then decided. */
  shouldRateLimit(request: DescriptorRequest, call?: CallTiming): DescriptorAnswer {
    this.#deps.guard?.admit(call);
    this.#admit();
    const { limiter, clock, metrics, limits } = this.#deps;
    const plan = planDescriptors(request, this.#deps.policies().rateLimitDomains, limits);
    if (plan instanceof TokenmeshError) throw plan;
    this.#deps.guard?.charge(call);
    const now = clock();
    const outcomes: (DecisionOutcome | undefined)[] = plan.decisions.map((d) =>
      d.targets.length === 0 ? undefined : (limiter.run([d.targets], now, d.consume)[0] as DecisionOutcome),
    );
    const answer = answerDescriptors(plan, outcomes);
    for (let i = 0; i < plan.decisions.length; i++) {
      const d = plan.decisions[i]!;
      const outcome = outcomes[i];
      if (!d.consume || outcome === undefined) continue;
      for (const t of d.targets) metrics.countDecision(t.policy, outcome.allowed);
    }
    for (const s of answer.statuses) if (s.shadowDenied && s.rule !== undefined) this.#shadowDenials.inc({ rule: s.rule.label });
    return answer;
  }

  #admit(): void {
    if (this.#deps.warmingUp()) throw new TokenmeshError(Status.UNAVAILABLE, "replica", WARMING_UP);
  }

  #decide(request: DecisionRequest, consume: boolean, includeReplicas: boolean, call: CallTiming | undefined): DecisionAnswers {
    this.#deps.guard?.admit(call);
    this.#admit();
    const { limiter, limits, clock, metrics } = this.#deps;
    if (request.malformed !== undefined) {
      throw invalidArgument("request", `not a valid protobuf message: ${request.malformed}`);
    }
    // The time is read before validation: the policies in force depend on it (a pending
    // `effectiveAt`), and validating, enforcing and answering under one limit needs one time.
    const now = clock();
    const validated = validateDecisions(request.decisions, this.#deps.policies().policiesAt(now), limits);
    if (!validated.ok) throw validated.error;
    const decisions: ValidDecision[] = validated.value;
    if (consume) this.#deps.guard?.charge(call);
    const outcomes = limiter.run(decisions, now, consume);
    const shares = limiter.store.shares;
    if (includeReplicas && shares !== undefined) {
      const store = limiter.store;
      return { decisions, outcomes, shares: decisions.map((d) => d.map((t) => shares.call(store, t.id, now))) };
    }
    if (consume) {
      for (let i = 0; i < outcomes.length; i++) {
        const allowed = (outcomes[i] as DecisionOutcome).allowed;
        for (const target of decisions[i] as ValidDecision) metrics.countDecision(target.policy, allowed);
        this.#deps.audit?.record(decisions[i] as ValidDecision, allowed);
      }
    }
    return { decisions, outcomes };
  }
}
