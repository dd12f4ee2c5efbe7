// Deadlines of client calls, for the check that a call is still wanted before it is charged.
//
// grpc-js knows each call's deadline (from `grpc-timeout`) but only enforces it with a timer,
// which cannot run while the loop is busy with the very calls that are late: 1,000 calls sent
// with `grpc-timeout: 1u` were decided and charged before the timer fired. nice-grpc does not
// pass the deadline on, so a grpc-js server interceptor (the documented hook) copies it into the
// call's metadata under an internal key, replacing anything a client sent under that name.
// The handler then refuses a call whose deadline passed, or that was cancelled, without taking
// a token; the deadline is moved back by how long the loop was behind (event-loop-watch.ts),
// because a call read from a backlog waited that long before the server started its clock
// (only while that backlog is being read: a call that came after it waited for nothing).

import { ServerInterceptingCall, type ServerInterceptor } from "@grpc/grpc-js";
import type { CallContext } from "nice-grpc";
import type { EventLoopWatch } from "./event-loop-watch.ts";

/** Internal metadata key: epoch milliseconds of the call's deadline (absent: none). */
export const DEADLINE_KEY = "tokenmesh-internal-deadline-ms";

export const deadlineInterceptor: ServerInterceptor = (_method, call) =>
  new ServerInterceptingCall(call, {
    start(next) {
      next({
        onReceiveMetadata(metadata, pass) {
          metadata.remove(DEADLINE_KEY);
          const deadline = call.getDeadline();
          const ms = deadline instanceof Date ? deadline.getTime() : deadline;
          if (Number.isFinite(ms)) metadata.set(DEADLINE_KEY, String(ms));
          pass(metadata);
        },
      });
    },
  });

/** What any door knows of a call's lifetime: transport-free, for the decision service. */
export interface CallTiming {
  /** Aborted once the caller cancelled (or the transport gave up on the call). */
  readonly signal?: AbortSignal;
  /** Wall-clock milliseconds by which the caller wants an answer. */
  readonly deadlineMs?: number;
}

/** A gRPC call's timing, from nice-grpc's call context and the interceptor's metadata. */
export function callTimingOf(context: CallContext | undefined): CallTiming | undefined {
  if (context === undefined) return undefined;
  const raw = context.metadata.get(DEADLINE_KEY);
  return raw === undefined ? { signal: context.signal } : { signal: context.signal, deadlineMs: Number(raw) };
}

export type Expiry = "deadline" | "cancelled";

/**
 * Why the call is no longer wanted, or undefined if it is. `nowMs` is the wall clock (the
 * deadline is wall-clock milliseconds, as grpc-js keeps it).
 */
export function callExpiry(call: CallTiming | undefined, watch: EventLoopWatch | undefined, nowMs: number): Expiry | undefined {
  if (call === undefined) return undefined;
  if (call.signal?.aborted === true) return "cancelled";
  if (call.deadlineMs === undefined) return undefined;
  return nowMs >= call.deadlineMs - (watch?.backlogMs() ?? 0) ? "deadline" : undefined;
}
