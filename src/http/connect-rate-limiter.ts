// tokenmesh.v1.RateLimiter over the Connect protocol (@connectrpc/connect): Consume and Query as
// JSON (protobuf JSON mapping) or binary at POST /tokenmesh.v1.RateLimiter/{Consume,Query}.
// The generated request messages are plain decisions already; answers are turned back into the
// generated response messages. Errors keep the decision service's code and message (Connect's
// codes are gRPC's: invalid_argument is HTTP 400, unavailable 503).

import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { DecisionOutcome } from "../core/decision.ts";
import { type DecisionResultSchema, RateLimiter } from "../gen/tokenmesh/v1/rate_limiter_pb.ts";
import { arrivalDeadline, type BacklogSource, type CallTiming } from "../server/call-deadline.ts";
import type { DecisionService } from "../server/decision-service.ts";
import { Status, TokenmeshError } from "../server/errors.ts";
import type { DecisionAnswers } from "../server/response-encoder.ts";

/** DenyReason's numbers (0: not denied, or no reason given). */
const DENY_REASON: Record<string, number> = { tokens: 1, escrow: 2 };

/** ConsumeResponse and QueryResponse share this shape. */
type ResponseInit = { results: MessageInitShape<typeof DecisionResultSchema>[] };

function responseOf(answers: DecisionAnswers): ResponseInit {
  const { outcomes, shares } = answers;
  return {
    results: outcomes.map((o: DecisionOutcome, i) => ({
      allowed: o.allowed,
      retryAfterUs: BigInt(o.retryAfterUs),
      buckets: o.buckets.map((r, j) => {
        const rate = r.rate; // in force for this key
        return {
          remaining: BigInt(r.remaining),
          retryAfterUs: BigInt(r.retryAfterUs),
          resetAfterUs: BigInt(r.resetAfterUs),
          capacity: BigInt(rate.capacity),
          refillTokens: BigInt(rate.refillTokens),
          refillPeriodMs: BigInt(Math.ceil(rate.refillPeriodUs / 1000)),
          replicas: (shares?.[i]?.[j] ?? []).map((s) => ({
            node: s.node,
            incarnation: s.incarnation,
            consumed: BigInt(s.consumed),
            lagUs: BigInt(s.lagUs),
            retired: s.retired,
            local: s.local,
          })),
          // Only for decisions with a strict bucket (the JSON mapping here writes every field).
          ...(o.denyReasons?.[j] === undefined ? {} : { denyReason: DENY_REASON[o.denyReasons[j] as string] ?? 0 }),
          ...(o.heldTokens?.[j] === undefined ? {} : { heldTokens: BigInt(o.heldTokens[j] as number) }),
        };
      }),
    })),
  };
}

/** The gRPC middleware's "request refused" line, for the HTTP doors. */
export function logRefused(log: Logger, method: string, err: TokenmeshError): void {
  if (log.isLevelEnabled("debug")) log.debug({ method, code: Status[err.code], field: err.field, reason: err.problem }, "request refused");
}

/** Whatever an HTTP handler threw, as a TokenmeshError, logged once: a refusal at debug, a server fault at error. */
export function refusedBy(err: unknown, log: Logger, method: string): TokenmeshError {
  const refused = TokenmeshError.from(err);
  if (refused.internal) log.error({ err: refused.cause, method }, "handler failed");
  else logRefused(log, method, refused);
  return refused;
}

/** For Connect's router: a caller's mistake keeps its code and text; anything else is answered `internal`. */
export function connectErrorOf(err: unknown, log: Logger, method: string): ConnectError {
  const refused = refusedBy(err, log, `/tokenmesh.v1.RateLimiter/${method}`);
  return new ConnectError(refused.details, refused.code as number as Code);
}

/**
 * What the call guard needs of a Connect call: its cancellation and its deadline
 * (connect-timeout-ms), read as the handler receives the call, with the loop's backlog then.
 */
function timingOf(context: HandlerContext, backlog: BacklogSource | undefined): CallTiming {
  const left = context.timeoutMs();
  const deadlineMs = arrivalDeadline(left === undefined ? undefined : Date.now() + left, backlog);
  return deadlineMs === undefined ? { signal: context.signal } : { signal: context.signal, deadlineMs };
}

export function connectRateLimiter(decisions: DecisionService, log: Logger, backlog?: BacklogSource) {
  return (router: ConnectRouter): void => {
    router.service(RateLimiter, {
      consume(request, context) {
        try {
          return responseOf(decisions.consume(request, timingOf(context, backlog)));
        } catch (err) {
          throw connectErrorOf(err, log, "Consume");
        }
      },
      query(request, context) {
        try {
          return responseOf(decisions.query(request, request.includeReplicas, timingOf(context, backlog)));
        } catch (err) {
          throw connectErrorOf(err, log, "Query");
        }
      },
    });
  };
}
