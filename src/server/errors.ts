// One error type for everything a caller did wrong: a gRPC status and a message that names the
// field and the limit. Anything else that escapes a handler becomes INTERNAL with a generic
// message, and its detail goes to the server log only.

import { ServerError, Status } from "nice-grpc";

export { Status };

export class RequestError extends ServerError {
  constructor(
    code: Status,
    /** The request field at fault (`decisions[0].buckets[1].key`), kept apart for debug logs. */
    readonly field: string,
    readonly problem: string,
  ) {
    super(code, `${field}: ${problem}`);
    this.name = "RequestError";
  }
}

export const invalidArgument = (field: string, problem: string): RequestError => new RequestError(Status.INVALID_ARGUMENT, field, problem);
