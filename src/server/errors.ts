// The edge's one error class. Whatever a door refuses, and whatever escapes a handler, becomes a
// TokenmeshError (`TokenmeshError.from`): a gRPC status code and a message that names the field
// and the limit. Each door maps it once: nice-grpc sends it as the call's status (it is a
// ServerError), the HTTP doors send `httpStatus` and `codeName`. An error the caller did not
// cause becomes INTERNAL with a generic message; its detail (`cause`) goes to the server log only.
// The pure core never throws on bad input: it returns a Result (src/core/result.ts), which the
// edge turns into a TokenmeshError where it reads it.

import { ConnectError } from "@connectrpc/connect";
import { isAbortError } from "abort-controller-x";
import { ServerError, Status } from "nice-grpc";

export { Status };

const INTERNAL_MESSAGE = "internal error; the server log has the detail";

/** The Connect protocol's HTTP status for each code (connectrpc.com/docs/protocol, "Error codes"). */
const HTTP_STATUS: Record<Status, number> = {
  [Status.OK]: 200,
  [Status.CANCELLED]: 499,
  [Status.UNKNOWN]: 500,
  [Status.INVALID_ARGUMENT]: 400,
  [Status.DEADLINE_EXCEEDED]: 504,
  [Status.NOT_FOUND]: 404,
  [Status.ALREADY_EXISTS]: 409,
  [Status.PERMISSION_DENIED]: 403,
  [Status.RESOURCE_EXHAUSTED]: 429,
  [Status.FAILED_PRECONDITION]: 400,
  [Status.ABORTED]: 409,
  [Status.OUT_OF_RANGE]: 400,
  [Status.UNIMPLEMENTED]: 501,
  [Status.INTERNAL]: 500,
  [Status.UNAVAILABLE]: 503,
  [Status.DATA_LOSS]: 500,
  [Status.UNAUTHENTICATED]: 401,
};

export class TokenmeshError extends ServerError {
  /** What escaped a handler, when the caller did not cause this error (for the server log only). */
  override readonly cause: unknown;

  constructor(
    code: Status,
    /** The request field at fault (`decisions[0].buckets[1].key`), kept apart for debug logs; "" if none. */
    readonly field: string,
    readonly problem: string,
    cause?: unknown,
  ) {
    super(code, field === "" ? problem : `${field}: ${problem}`);
    this.name = "TokenmeshError";
    this.cause = cause;
  }

  /** Whether the server, not the caller, is at fault: log `cause`, answer the generic message. */
  get internal(): boolean {
    return this.cause !== undefined;
  }

  /** The HTTP status the Connect protocol gives this code. */
  get httpStatus(): number {
    return HTTP_STATUS[this.code] ?? 500;
  }

  /** The Connect protocol's name of the code: `invalid_argument`, `resource_exhausted`, `canceled`. */
  get codeName(): string {
    return this.code === Status.CANCELLED ? "canceled" : Status[this.code].toLowerCase();
  }

  /**
   * Any thrown value as a TokenmeshError: itself; a nice-grpc ServerError or a ConnectError
   * keeps its code and text; an abort (the client went away) is CANCELLED; anything else is INTERNAL, keeping the
   * value as `cause`.
   */
  static from(err: unknown): TokenmeshError {
    if (err instanceof TokenmeshError) return err;
    if (err instanceof ServerError) return new TokenmeshError(err.code, "", err.details);
    // Thrown inside Connect's own code (its decompressors, its JSON parsing).
    if (err instanceof ConnectError) return new TokenmeshError(err.code as number as Status, "", err.rawMessage);
    if (isAbortError(err)) return new TokenmeshError(Status.CANCELLED, "call", "cancelled by the client");
    return new TokenmeshError(Status.INTERNAL, "", INTERNAL_MESSAGE, err ?? "undefined was thrown");
  }
}

export const invalidArgument = (field: string, problem: string): TokenmeshError =>
  new TokenmeshError(Status.INVALID_ARGUMENT, field, problem);
