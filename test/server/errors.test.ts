// The edge's one error class: whatever is thrown becomes a TokenmeshError with the right code,
// a caller's message kept and a server fault's detail kept out of the answer.

import { Code, ConnectError } from "@connectrpc/connect";
import { AbortError } from "abort-controller-x";
import { ServerError } from "nice-grpc";
import { describe, expect, it } from "vitest";
import { invalidArgument, Status, TokenmeshError } from "../../src/server/errors.ts";

describe("TokenmeshError.from", () => {
  it("keeps a TokenmeshError as it is", () => {
    const e = invalidArgument("decisions[0].buckets", "must hold 1..16 buckets, got 0");
    expect(TokenmeshError.from(e)).toBe(e);
    expect(e.details).toBe("decisions[0].buckets: must hold 1..16 buckets, got 0");
    expect(e.internal).toBe(false);
  });

  it("keeps the code and text of a nice-grpc ServerError and of a ConnectError", () => {
    const grpc = TokenmeshError.from(new ServerError(Status.UNAVAILABLE, "replica: warming up"));
    expect([grpc.code, grpc.details, grpc.internal]).toEqual([Status.UNAVAILABLE, "replica: warming up", false]);
    const connect = TokenmeshError.from(new ConnectError("request body: over the limit", Code.ResourceExhausted));
    expect([connect.code, connect.details, connect.httpStatus]).toEqual([Status.RESOURCE_EXHAUSTED, "request body: over the limit", 429]);
  });

  it("makes an abort CANCELLED, answered 499 canceled as Connect names it", () => {
    const e = TokenmeshError.from(new AbortError());
    expect([e.code, e.internal, e.httpStatus, e.codeName]).toEqual([Status.CANCELLED, false, 499, "canceled"]);
  });

  it("makes anything else INTERNAL with a generic message, the detail kept as cause only", () => {
    const thrown = new Error("secret: /var/lib/tokenmesh/key.pem");
    const e = TokenmeshError.from(thrown);
    expect([e.code, e.internal, e.cause, e.httpStatus, e.codeName]).toEqual([Status.INTERNAL, true, thrown, 500, "internal"]);
    expect(e.details).not.toContain("secret");
    expect(TokenmeshError.from(undefined).internal).toBe(true);
  });

  it("maps codes to HTTP statuses as the Connect protocol does", () => {
    const status = (code: Status) => new TokenmeshError(code, "f", "p").httpStatus;
    expect([Status.INVALID_ARGUMENT, Status.DEADLINE_EXCEEDED, Status.UNIMPLEMENTED, Status.UNAVAILABLE].map(status)).toEqual([
      400, 504, 501, 503,
    ]);
  });
});
