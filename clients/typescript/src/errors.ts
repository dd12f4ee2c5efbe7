// The one error type the client throws: a gRPC status code, a message that names the field or
// the failing address, and the underlying error as `cause`.

import { Status } from "nice-grpc-common";

export { Status };

export class TokenmeshError extends Error {
  override readonly name = "TokenmeshError";

  constructor(
    readonly code: Status,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${Status[code]}: ${message}`, options);
  }
}

export const invalidArgument = (field: string, problem: string): TokenmeshError =>
  new TokenmeshError(Status.INVALID_ARGUMENT, `${field}: ${problem}`);
