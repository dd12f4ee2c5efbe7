// Unary gRPC calls to one address over Node's own HTTP/2 client (node:http2), with nothing else
// in between: one HTTP/2 session per address, opened on first use and replaced when it closes.
//
// Why not grpc-js and nice-grpc here: at one call in flight a decision's round trip is mostly
// fixed per-call work, and the client stack was over half of it. Measured on loopback with the
// same server (clients/typescript/bench/call-latency.ts, docs/performance.md): bare node:http2
// ~260 us p50, grpc-js ~340, nice-grpc ~400, the limiter on nice-grpc ~440. The gRPC protocol a
// unary call needs is small (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md):
// a POST with `content-type: application/grpc` and `te: trailers`, one length-prefixed message
// each way, and the status in the trailers (or in the headers of a trailers-only answer).
//
// Errors carry `neverSent` when the request cannot have reached the service (no connection, or
// the stream refused before processing), which is what makes a Consume safe to send elsewhere.

import http2 from "node:http2";
import { isIP } from "node:net";
import tls from "node:tls";
import { Status } from "nice-grpc-common";

export interface TlsOptions {
  readonly rootCerts?: Buffer;
  readonly privateKey?: Buffer;
  readonly certChain?: Buffer;
}

/** A failed call: a gRPC status, its message, and whether the request can have been processed. */
export class RpcError extends Error {
  override readonly name = "RpcError";
  constructor(
    readonly code: Status,
    readonly details: string,
    /** True when the service cannot have seen the request, so resending cannot double-charge. */
    readonly neverSent: boolean,
  ) {
    super(`${Status[code]}: ${details}`);
  }
}

/** The largest response accepted, as grpc-js's default receive limit. */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;
/** A connection attempt that has not completed by then is abandoned. */
const CONNECT_TIMEOUT_MS = 10_000;
/** After a failed attempt, calls fail at once (never sent) for this long, doubling to the cap. */
const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 2_000;
/** A larger connection window than HTTP/2's 64 KiB, so concurrent 1,000-decision answers do not stall. */
const CONNECTION_WINDOW_BYTES = 4 * 1024 * 1024;

/** HTTP status to gRPC status when a response is not gRPC at all (PROTOCOL-HTTP2.md, "HTTP to gRPC Status Code Mapping"). */
function statusOfHttp(status: number): Status {
  if (status === 400) return Status.INTERNAL;
  if (status === 401) return Status.UNAUTHENTICATED;
  if (status === 403) return Status.PERMISSION_DENIED;
  if (status === 404) return Status.UNIMPLEMENTED;
  if (status === 429 || status === 502 || status === 503 || status === 504) return Status.UNAVAILABLE;
  return Status.UNKNOWN;
}

function decodeMessage(raw: unknown): string {
  if (typeof raw !== "string") return "";
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

interface Live {
  readonly session: http2.ClientHttp2Session;
  /** False once the session is closing or went away: new calls open another. */
  usable: boolean;
  active: number;
}

export class GrpcConnection {
  readonly #authority: string;
  readonly #options: http2.ClientSessionOptions;
  #live: Live | undefined;
  #connecting: Promise<Live> | undefined;
  #failedUntil = 0;
  #backoffMs = 0;
  #lastFailure = "";
  #closed = false;

  constructor(
    readonly address: string,
    secure: boolean | TlsOptions,
  ) {
    this.#authority = `${secure === false ? "http" : "https"}://${address}`;
    if (secure === false) {
      this.#options = {};
      return;
    }
    const t = typeof secure === "object" ? secure : {};
    const { hostname, port } = new URL(this.#authority);
    const host = hostname.replace(/^\[|\]$/g, "");
    // Our own TLS socket: http2.connect would send the host as SNI even when it is an IP address,
    // which RFC 6066 forbids (Node warns). The certificate is still checked against the host.
    const options: tls.ConnectionOptions = {
      host,
      port: Number(port || 443),
      ALPNProtocols: ["h2"],
      ...(isIP(host) === 0 ? { servername: host } : {}),
      ...(t.rootCerts === undefined ? {} : { ca: t.rootCerts }),
      ...(t.privateKey === undefined ? {} : { key: t.privateKey }),
      ...(t.certChain === undefined ? {} : { cert: t.certChain }),
    };
    this.#options = { createConnection: () => tls.connect(options) };
  }

  /** One unary call; resolves with the response message (unframed). `deadlineAt` is `performance.now()` time. */
  unary(path: string, body: Buffer, deadlineAt: number): Promise<Buffer> {
    const live = this.#live;
    // The common case stays synchronous up to the write: no extra turn before the request leaves.
    if (live?.usable === true) return this.#call(live, path, body, deadlineAt);
    return this.#connect(deadlineAt).then((l) => this.#call(l, path, body, deadlineAt));
  }

  close(): void {
    this.#closed = true;
    this.#live?.session.close();
    this.#live = undefined;
  }

  #connect(deadlineAt: number): Promise<Live> {
    if (this.#closed) return Promise.reject(new RpcError(Status.UNAVAILABLE, "Channel closed before call started", true));
    const now = performance.now();
    if (now < this.#failedUntil) {
      const wait = Math.ceil(this.#failedUntil - now);
      return Promise.reject(
        new RpcError(
          Status.UNAVAILABLE,
          `No connection established to ${this.address}: ${this.#lastFailure} (next attempt in ${wait} ms)`,
          true,
        ),
      );
    }
    this.#connecting ??= this.#open().finally(() => {
      this.#connecting = undefined;
    });
    const remaining = deadlineAt - now;
    if (remaining <= 0) return Promise.reject(new RpcError(Status.DEADLINE_EXCEEDED, "Deadline exceeded while connecting", false));
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new RpcError(Status.DEADLINE_EXCEEDED, `Deadline exceeded while connecting to ${this.address}`, false)),
        remaining,
      );
    });
    return Promise.race([this.#connecting, expired]).finally(() => clearTimeout(timer));
  }

  #open(): Promise<Live> {
    return new Promise((resolve, reject) => {
      let done = false;
      const fail = (reason: string): void => {
        if (done) return;
        done = true;
        this.#lastFailure = reason;
        this.#backoffMs = Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_FIRST_MS, this.#backoffMs * 2));
        this.#failedUntil = performance.now() + this.#backoffMs;
        reject(new RpcError(Status.UNAVAILABLE, `No connection established to ${this.address}: ${reason}`, true));
      };
      let session: http2.ClientHttp2Session;
      try {
        session = http2.connect(this.#authority, this.#options);
      } catch (err) {
        fail(err instanceof Error ? err.message : String(err));
        return;
      }
      const timeout = setTimeout(() => {
        fail(`connection attempt timed out after ${CONNECT_TIMEOUT_MS} ms`);
        session.destroy();
      }, CONNECT_TIMEOUT_MS);
      const onEarlyError = (err: Error): void => fail(err.message);
      const onEarlyClose = (): void => fail("connection closed before it was established");
      session.on("error", onEarlyError);
      session.once("close", onEarlyClose);
      session.once("connect", () => {
        clearTimeout(timeout);
        session.off("error", onEarlyError);
        session.off("close", onEarlyClose);
        if (done) return;
        done = true;
        if (this.#closed) {
          session.close();
          reject(new RpcError(Status.UNAVAILABLE, "Channel closed before call started", true));
          return;
        }
        const live: Live = { session, usable: true, active: 0 };
        const retire = (): void => {
          live.usable = false;
          if (this.#live === live) this.#live = undefined;
        };
        session.on("error", retire); // the streams in flight get their own errors
        session.once("goaway", retire);
        session.once("close", retire);
        session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
        session.unref(); // an idle connection does not keep the process alive (calls do)
        this.#backoffMs = 0;
        this.#live = live;
        resolve(live);
      });
      session.once("close", () => clearTimeout(timeout));
    });
  }

  #call(live: Live, path: string, body: Buffer, deadlineAt: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const remaining = deadlineAt - performance.now();
      if (remaining <= 0) {
        reject(new RpcError(Status.DEADLINE_EXCEEDED, "Deadline exceeded before the call was sent", false));
        return;
      }
      let stream: http2.ClientHttp2Stream;
      try {
        stream = live.session.request({
          ":method": "POST",
          ":path": path,
          "content-type": "application/grpc",
          te: "trailers",
          "grpc-timeout": `${Math.ceil(remaining)}m`,
          "grpc-accept-encoding": "identity",
        });
      } catch (err) {
        // The session was closing: nothing was sent on it.
        live.usable = false;
        if (this.#live === live) this.#live = undefined;
        reject(new RpcError(Status.UNAVAILABLE, `Channel closed before call started: ${(err as Error).message}`, true));
        return;
      }
      if (live.active++ === 0) live.session.ref();
      let settled = false;
      let headers: http2.IncomingHttpHeaders | undefined;
      let trailers: http2.IncomingHttpHeaders | undefined;
      let streamError: Error | undefined;
      const chunks: Buffer[] = [];
      let received = 0;
      const finish = (error: RpcError | undefined, message?: Buffer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (--live.active === 0) live.session.unref();
        if (error !== undefined) {
          if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
          reject(error);
        } else resolve(message as Buffer);
      };
      const timer = setTimeout(() => finish(new RpcError(Status.DEADLINE_EXCEEDED, "Deadline exceeded", false)), remaining);
      stream.on("response", (h) => {
        headers = h;
      });
      stream.on("trailers", (t) => {
        trailers = t;
      });
      stream.on("data", (chunk: Buffer) => {
        received += chunk.length;
        if (received > MAX_RESPONSE_BYTES + 5) {
          finish(new RpcError(Status.RESOURCE_EXHAUSTED, `response larger than ${MAX_RESPONSE_BYTES} bytes`, false));
          return;
        }
        chunks.push(chunk);
        // The whole message is here: answer now rather than after the trailers, which grpc-js
        // writes separately (one more wake-up and read: ~10 us on a quiet machine, 100-250 us
        // at one call in flight on the shared bench machine, docs/performance.md). A unary
        // reply's message comes only with status OK: the server sends an error status instead
        // of a message, not after one. The trailers still arrive and end the stream.
        if (received >= 5 && headers !== undefined && headers["grpc-status"] === undefined) {
          const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, received);
          if (body[0] === 0 && body.readUInt32BE(1) === received - 5) finish(undefined, body.subarray(5));
        }
      });
      stream.on("error", (err) => {
        streamError = err;
      });
      stream.on("close", () => {
        if (settled) return;
        if (stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM) {
          finish(new RpcError(Status.UNAVAILABLE, "stream refused by the server before processing", true));
          return;
        }
        finish(...outcome(headers, trailers, streamError, chunks, received));
      });
      stream.end(body);
    });
  }
}

/** The call's result from what arrived: [error] or [undefined, message]. */
function outcome(
  headers: http2.IncomingHttpHeaders | undefined,
  trailers: http2.IncomingHttpHeaders | undefined,
  streamError: Error | undefined,
  chunks: readonly Buffer[],
  received: number,
): [RpcError | undefined, Buffer?] {
  if (headers === undefined) {
    const why = streamError?.message ?? "the stream closed without a response";
    return [new RpcError(Status.UNAVAILABLE, `connection lost mid-call: ${why}`, false)];
  }
  const http = Number(headers[":status"]);
  if (http !== 200) return [new RpcError(statusOfHttp(http), `HTTP status ${http} from a gRPC endpoint`, false)];
  const status = trailers?.["grpc-status"] ?? headers["grpc-status"];
  if (status === undefined) {
    const why = streamError === undefined ? "" : `: ${streamError.message}`;
    return [new RpcError(streamError === undefined ? Status.UNKNOWN : Status.UNAVAILABLE, `no grpc-status received${why}`, false)];
  }
  const code = Number(status);
  if (code !== Status.OK) {
    const known = Number.isInteger(code) && code >= 0 && code <= 16;
    const details = decodeMessage(trailers?.["grpc-message"] ?? headers["grpc-message"]);
    return [new RpcError(known ? (code as Status) : Status.UNKNOWN, details, false)];
  }
  const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, received);
  if (body.length < 5) return [new RpcError(Status.INTERNAL, `response of ${body.length} bytes has no message`, false)];
  if (body[0] !== 0) return [new RpcError(Status.INTERNAL, "compressed response, but the client asked for identity", false)];
  const length = body.readUInt32BE(1);
  if (length !== body.length - 5) {
    return [new RpcError(Status.INTERNAL, `response holds ${body.length - 5} message bytes but its prefix says ${length}`, false)];
  }
  return [undefined, body.subarray(5)];
}
