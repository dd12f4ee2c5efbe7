// Deadlines of client calls, for the check that a call is still wanted before it is charged.
//
// grpc-js knows each call's deadline (from `grpc-timeout`) but only enforces it with a timer,
// which cannot run while the loop is busy with the very calls that are late: 1,000 calls sent
// with `grpc-timeout: 1u` were decided and charged before the timer fired. nice-grpc does not
// pass the deadline on, so a grpc-js server interceptor (the documented hook) copies it into the
// call's metadata under an internal key, replacing anything a client sent under that name.
// The handler then refuses a call whose deadline passed, or that was cancelled, without taking
// a token. A call read from a backlog (event-loop-watch.ts) waited that long before the server
// started its clock, so its deadline is moved back by it; that backlog is read when the call's
// headers arrive and kept with the call, never at decision time: a stall that began after the
// call arrived, or one that ended before it, must not move its deadline (a call that came after
// a stall waited for nothing; one caught behind a later stall is checked against the clock).

import { type Metadata, ServerInterceptingCall, type ServerInterceptingCallInterface, type ServerInterceptor } from "@grpc/grpc-js";
import type { CallContext } from "nice-grpc";

/** Internal metadata key: epoch milliseconds of the call's deadline (absent: none). */
export const DEADLINE_KEY = "tokenmesh-internal-deadline-ms";

/** Where a door reads the loop's backlog on a call's arrival (an EventLoopWatch, or none). */
export interface BacklogSource {
  backlogMs(): number;
}

/**
 * The deadline a call is held to: the caller's, moved back by the backlog the loop was reading
 * when the call arrived (undefined: no deadline). Called once, as the call's headers arrive.
 */
export function arrivalDeadline(deadlineMs: number | undefined, backlog: BacklogSource | undefined): number | undefined {
  if (deadlineMs === undefined || !Number.isFinite(deadlineMs)) return undefined;
  return deadlineMs - (backlog?.backlogMs() ?? 0);
}

/**
 * The grpc-js interceptor: records each call's deadline as its headers arrive. grpc-js runs
 * interceptors as it makes the call from the request headers, with the deadline already parsed,
 * so the deadline is held (and the backlog read) here; the listener only stamps it on the
 * metadata the handler gets. The call is passed on by `DeadlineStampedCall`: grpc-js's generic
 * `ServerInterceptingCall` with a start listener would per call add a listener chain of
 * closures and an empty `Metadata` before the answer, for hooks this interceptor does not use.
 */
export function deadlineInterceptor(backlog: BacklogSource | undefined): ServerInterceptor {
  return (_method, call) => {
    const deadline = call.getDeadline();
    return new DeadlineStampedCall(call, arrivalDeadline(deadline instanceof Date ? deadline.getTime() : deadline, backlog));
  };
}

type InterceptingServerListener = Parameters<ServerInterceptingCallInterface["start"]>[0];
type StatusSent = Parameters<ServerInterceptingCallInterface["sendStatus"]>[0];

/**
 * Passes every operation straight to the call beneath; only its start puts the stamping
 * listener in. A subclass because grpc-js's interceptor type asks for a ServerInterceptingCall;
 * the methods it overrides are the ones that go through the responder chain there (the rest
 * already delegate).
 */
class DeadlineStampedCall extends ServerInterceptingCall {
  readonly #next: ServerInterceptingCallInterface;
  readonly #held: number | undefined;

  constructor(next: ServerInterceptingCallInterface, held: number | undefined) {
    super(next);
    this.#next = next;
    this.#held = held;
  }

  override start(listener: InterceptingServerListener): void {
    this.#next.start(new DeadlineStampingListener(listener, this.#held));
  }
  override sendMetadata(metadata: Metadata): void {
    this.#next.sendMetadata(metadata);
  }
  override sendMessage(message: unknown, callback: () => void): void {
    this.#next.sendMessage(message, callback);
  }
  override sendStatus(status: StatusSent): void {
    this.#next.sendStatus(status);
  }
}

/** Puts the held deadline on the request metadata, replacing whatever a client sent under the key. */
class DeadlineStampingListener implements InterceptingServerListener {
  constructor(
    private readonly next: InterceptingServerListener,
    private readonly held: number | undefined,
  ) {}

  onReceiveMetadata(metadata: Metadata): void {
    metadata.remove(DEADLINE_KEY);
    if (this.held !== undefined) metadata.set(DEADLINE_KEY, String(this.held));
    this.next.onReceiveMetadata(metadata);
  }
  onReceiveMessage(message: unknown): void {
    this.next.onReceiveMessage(message);
  }
  onReceiveHalfClose(): void {
    this.next.onReceiveHalfClose();
  }
  onCancel(): void {
    this.next.onCancel();
  }
}

/** What any door knows of a call's lifetime: transport-free, for the decision service. */
export interface CallTiming {
  /** Aborted once the caller cancelled (or the transport gave up on the call). */
  readonly signal?: AbortSignal;
  /**
   * Wall-clock milliseconds by which the caller wants an answer, already moved back by the
   * backlog the loop was reading when the call arrived (`arrivalDeadline`).
   */
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
export function callExpiry(call: CallTiming | undefined, nowMs: number): Expiry | undefined {
  if (call === undefined) return undefined;
  if (call.signal?.aborted === true) return "cancelled";
  if (call.deadlineMs === undefined) return undefined;
  return nowMs >= call.deadlineMs ? "deadline" : undefined;
}
