// Server middleware: times every call, and turns errors the caller did not cause into INTERNAL
// with a generic message (the detail goes to the log, never to the caller).

import { isAbortError } from "abort-controller-x";
import { type CallContext, ServerError, type ServerMiddlewareCall, Status } from "nice-grpc";
import type { Logger } from "pino";
import type { Metrics } from "../metrics/metrics.ts";

export function observeCalls(metrics: Metrics, log: Logger) {
  return async function* observe<Request, Response>(
    call: ServerMiddlewareCall<Request, Response>,
    context: CallContext,
    // biome-ignore lint/suspicious/noConfusingVoidType: nice-grpc's middleware signature returns `Response | void`
  ): AsyncGenerator<Response, Response | void, undefined> {
    const method = call.method.path;
    const started = performance.now();
    let code = Status.OK;
    try {
      return yield* call.next(call.request, context);
    } catch (err) {
      if (err instanceof ServerError) {
        code = err.code;
        throw err;
      }
      if (isAbortError(err)) {
        code = Status.CANCELLED;
        throw err;
      }
      code = Status.INTERNAL;
      log.error({ err, method }, "handler failed");
      throw new ServerError(Status.INTERNAL, "internal error; the server log has the detail");
    } finally {
      metrics.requestSeconds.observe({ method, code: Status[code] }, (performance.now() - started) / 1000);
    }
  };
}
