// What a failed RPC means for its callers, and the log and counters for outages.
//
// Errors that say the request is wrong (bad argument, unknown method, no permission) reject the
// call: answering them with the fail mode would hide a configuration bug forever. Errors that say
// the service could not answer (unavailable, deadline, overload, internal) get the fail mode, so
// an outage costs at most one deadline per batch and never a hang.

import { Status } from "nice-grpc-common";
import type { Logger } from "./options.js";
import { type Decision, summarize } from "./types.js";
import { RpcError } from "./wire/grpc-connection.js";

const CALLER_ERRORS: ReadonlySet<Status> = new Set([
  Status.INVALID_ARGUMENT,
  Status.NOT_FOUND,
  Status.ALREADY_EXISTS,
  Status.FAILED_PRECONDITION,
  Status.OUT_OF_RANGE,
  Status.UNIMPLEMENTED,
  Status.PERMISSION_DENIED,
  Status.UNAUTHENTICATED,
]);

/** True when the fail mode should answer instead of an error. */
export function serviceCouldNotAnswer(err: unknown): err is RpcError {
  return err instanceof RpcError && !CALLER_ERRORS.has(err.code);
}

/** While an outage lasts, a reminder goes to the log at most this often. */
const REMIND_EVERY_MS = 10_000;

export class OutageReporter {
  failOpen = 0;
  failClosed = 0;
  #downSince: number | undefined;
  #lastLog = 0;
  #answeredSinceLog = 0;

  constructor(
    private readonly mode: "open" | "closed",
    private readonly retryAfterMs: number,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  /** The answer for `count` calls whose RPC failed with `err`; logs the first and then periodically. */
  answer(err: RpcError, count: number, addresses: readonly string[]): Decision {
    if (this.mode === "open") this.failOpen += count;
    else this.failClosed += count;
    this.#answeredSinceLog += count;
    const now = this.now();
    if (this.#downSince === undefined || now - this.#lastLog >= REMIND_EVERY_MS) {
      this.logger.warn(
        { code: Status[err.code], details: err.details, addresses, failMode: this.mode, calls: this.#answeredSinceLog },
        `tokenmesh unreachable; failing ${this.mode}`,
      );
      this.#downSince ??= now;
      this.#lastLog = now;
      this.#answeredSinceLog = 0;
    }
    return this.mode === "open" ? summarize(true, 0, [], "fail-open") : summarize(false, this.retryAfterMs, [], "fail-closed");
  }

  /** Called after every answered RPC: ends an outage, with a log line saying how long it lasted. */
  recovered(): void {
    if (this.#downSince === undefined) return;
    this.logger.info({ downMs: Math.round(this.now() - this.#downSince), calls: this.#answeredSinceLog }, "tokenmesh reachable again");
    this.#downSince = undefined;
    this.#answeredSinceLog = 0;
  }
}
