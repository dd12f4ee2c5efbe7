// Server middleware: times every call, logs refused requests at debug (the field and the reason,
// for an operator chasing one client's errors), and turns whatever a handler throws into a
// TokenmeshError: errors the caller did not cause become INTERNAL with a generic message (the
// detail goes to the log, never to the caller).

import { isAbortError } from "abort-controller-x";
import type { CallContext, ServerMiddlewareCall } from "nice-grpc";
import type { Logger } from "pino";
import type { HistogramSeries } from "../metrics/call-histogram.ts";
import type { GrpcLabels, Metrics } from "../metrics/metrics.ts";
import { Status, TokenmeshError } from "./errors.ts";

/** `/tokenmesh.v1.RateLimiter/Consume` as `{ grpc_service: "tokenmesh.v1.RateLimiter", grpc_method: "Consume" }`. */
export function grpcLabels(path: string): GrpcLabels {
  const at = path.lastIndexOf("/");
  return { grpc_service: path.slice(1, at), grpc_method: path.slice(at + 1) };
}

export function observeCalls(metrics: Metrics, log: Logger) {
  // One histogram series per method and status, taken once: building labels and looking the
  // series up per call was most of an observation's cost. Only registered methods reach the
  // middleware, so this stays small.
  const seriesOf = new Map<string, HistogramSeries[]>();
  const seriesFor = (path: string, code: Status): HistogramSeries => {
    let byCode = seriesOf.get(path);
    if (byCode === undefined) {
      byCode = [];
      seriesOf.set(path, byCode);
    }
    let series = byCode[code];
    if (series === undefined) {
      series = metrics.requestSeconds.series({ ...grpcLabels(path), grpc_code: Status[code] });
      byCode[code] = series;
    }
    return series;
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
      seriesFor(path, code).observe((performance.now() - started) / 1000);
    }
  };
}
