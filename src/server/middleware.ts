// Server middleware: times every call, logs refused requests at debug (the field and the reason,
// for an operator chasing one client's errors), and turns whatever a handler throws into a
// TokenmeshError: errors the caller did not cause become INTERNAL with a generic message (the
// detail goes to the log, never to the caller).

import { isAbortError } from "abort-controller-x";
import type { CallContext, ServerMiddlewareCall } from "nice-grpc";
import type { Logger } from "pino";
import type { GrpcLabels, Metrics } from "../metrics/metrics.ts";
import { Status, TokenmeshError } from "./errors.ts";

/** `/tokenmesh.v1.RateLimiter/Consume` as `{ grpc_service: "tokenmesh.v1.RateLimiter", grpc_method: "Consume" }`. */
export function grpcLabels(path: string): GrpcLabels {
  const at = path.lastIndexOf("/");
  return { grpc_service: path.slice(1, at), grpc_method: path.slice(at + 1) };
}

type CallLabels = GrpcLabels & { readonly grpc_code: string };

export function observeCalls(metrics: Metrics, log: Logger) {
  // One label object per method and status, made once: building it per call (a spread) made
  // each observation cost 3x. Only registered methods reach the middleware, so this stays small.
  const labelsOf = new Map<string, CallLabels[]>();
  const labelsFor = (path: string, code: Status): CallLabels => {
    let byCode = labelsOf.get(path);
    if (byCode === undefined) {
      byCode = [];
      labelsOf.set(path, byCode);
    }
    let labels = byCode[code];
    if (labels === undefined) {
      labels = { ...grpcLabels(path), grpc_code: Status[code] };
      byCode[code] = labels;
    }
    return labels;
  };
  return async function* observe<Request, Response>(
    call: ServerMiddlewareCall<Request, Response>,
    context: CallContext,
    // biome-ignore lint/suspicious/noConfusingVoidType: nice-grpc's middleware signature returns `Response | void`
  ): AsyncGenerator<Response, Response | void, undefined> {
    const path = call.method.path;
    const started = performance.now();
    let code = Status.OK;
    try {
      return yield* call.next(call.request, context);
    } catch (err) {
      const refused = TokenmeshError.from(err);
      code = refused.code;
      if (refused.internal) {
        log.error({ err, method: path }, "handler failed");
        throw refused;
      }
      // An abort goes back as it came: nice-grpc knows the client is gone and sends nothing.
      if (isAbortError(err)) throw err;
      if (log.isLevelEnabled("debug")) {
        log.debug(
          { method: path, code: Status[code], field: refused.field, reason: refused.problem, peer: context.peer },
          "request refused",
        );
      }
      throw refused;
    } finally {
      metrics.requestSeconds.observe(labelsFor(path, code), (performance.now() - started) / 1000);
    }
  };
}
