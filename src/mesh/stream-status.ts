// Ends a server stream with a gRPC status. grpc-js gives a server duplex call no method for it:
// its supported way is to emit "error" with a ServiceError-shaped object ({code, details,
// metadata}), which the call's own listener (ServerDuplexStreamImpl) turns into the status and
// trailers before ending the call; grpc-js's default UNIMPLEMENTED handler does just that, and
// its maintainers give it as the answer (grpc/grpc-node#2028). `call.destroy(err)` would not do:
// the stream is torn down before its final step sends a status, and the peer waits for one that
// never comes (tried against grpc-js 1.14.7: no status within 3 s).

import { Metadata, type ServerDuplexStream, type ServiceError, type status as Status } from "@grpc/grpc-js";

/** Trailer naming why a peer stream was refused (the `reason` label of tokenmesh_peer_rejected_total). */
export const REJECT_REASON_TRAILER = "tokenmesh-reject-reason";

/** Ends `call` with status `code` and `details`; `reason`, if given, goes out as a trailer too. */
export function failStream(call: ServerDuplexStream<unknown, unknown>, code: Status, details: string, reason?: string): void {
  const metadata = new Metadata();
  if (reason !== undefined) metadata.set(REJECT_REASON_TRAILER, reason);
  const error: ServiceError = Object.assign(new Error(details), { code, details, metadata });
  call.emit("error", error);
}
