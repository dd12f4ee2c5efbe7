// The HTTP/JSON door (`httpListen`): tokenmesh.v1.RateLimiter over the Connect protocol (JSON by
// Connect's handler, binary by binary-decisions.ts), and
// /v1/check, /health and /ready for scripts, proxies, Docker HEALTHCHECK and Kubernetes probes.
// Bodies are read by Connect, or for binary Consume/Query by binary-decisions.ts (the gRPC door's
// strict decoder); both refuse one above limits.maxMessageBytes before it is read whole (by its
// Content-Length, or as soon as the stream passes the limit).

import { isUtf8 } from "node:buffer";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import type { BacklogSource } from "../server/call-deadline.ts";
import type { DecisionService } from "../server/decision-service.ts";
import { binaryDecisionMethod, serveBinaryDecision } from "./binary-decisions.ts";
import { sendJson, serveCheck } from "./check-endpoint.ts";
import { connectRateLimiter } from "./connect-rate-limiter.ts";
import { exactIntegerFields } from "./json-integers.ts";

export interface HttpDoorOptions {
  readonly decisions: DecisionService;
  readonly log: Logger;
  readonly maxMessageBytes: number;
  /** Moves a late call's deadline back by the loop's backlog as it arrives (none: never). */
  readonly backlog?: BacklogSource | undefined;
}

const ROUTES: Record<string, string> = { "/v1/check": "GET", "/health": "GET", "/ready": "GET" };

/**
 * JSON bodies must be UTF-8 (RFC 8259): Connect's default decoder turns each bad byte into
 * U+FFFD, so keys "\xff", "\xfe" and "\x80" would share one bucket. Refused whole instead (the
 * field is not named: the bytes are not JSON text yet); ConnectError keeps its code and text.
 * Then the integer fields are read exactly from their text, as ProtoJSON defines them
 * (json-integers.ts): a cost of "0x10" or 1.5 is refused naming the field, 1e3 is 1000.
 */
const strictJsonBody = {
  decode(input?: Uint8Array): string {
    const bytes = input ?? new Uint8Array(0);
    if (!isUtf8(bytes))
      throw new ConnectError("request body: JSON must be valid UTF-8 (RFC 8259); it holds bytes that are not", Code.InvalidArgument);
    const checked = exactIntegerFields(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
    if (!checked.ok) throw new ConnectError(`${checked.error.field}: ${checked.error.message}`, Code.InvalidArgument);
    return checked.value;
  },
};

/**
 * Defaults shown: `"allowed": false` and `"remaining": "0"` are answers, not noise. Connect's
 * JSON serialization also reads `textDecoder` from these options (createJsonSerialization),
 * though the adapter's type does not list it; test/http/bad-input.test.ts pins that it is used.
 */
const JSON_OPTIONS = { alwaysEmitImplicit: true, textDecoder: strictJsonBody };

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  return (length !== undefined && length !== "0") || req.headers["transfer-encoding"] !== undefined;
}

function serveRoutes(options: HttpDoorOptions) {
  const { decisions, log } = options;
  return (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? "/", "http://tokenmesh");
    const method = ROUTES[url.pathname];
    // A body these routes never read is not drained: the connection closes after the answer.
    if (hasBody(req)) res.shouldKeepAlive = false;
    if (method === undefined) {
      sendJson(res, 404, {
        code: "not_found",
        message: `no route ${url.pathname.slice(0, 128)}: try GET /v1/check, /health, /ready or POST /tokenmesh.v1.RateLimiter/Consume`,
      });
      return;
    }
    if (req.method !== method && !(req.method === "HEAD" && method === "GET")) {
      sendJson(res, 405, { code: "method_not_allowed", message: `${url.pathname} answers ${method} only` }, { allow: method });
      return;
    }
    if (url.pathname === "/health") {
      sendJson(res, 200, { status: "ok" });
      return;
    }
    if (url.pathname === "/ready") {
      const r = decisions.readiness();
      if (r.ready) sendJson(res, 200, { status: "ready" });
      else sendJson(res, 503, { status: "not ready", reason: r.reason });
      return;
    }
    serveCheck(decisions, url, res, log);
  };
}

export function createHttpDoor(options: HttpDoorOptions): Server {
  const routes = serveRoutes(options);
  const handler = connectNodeAdapter({
    routes: connectRateLimiter(options.decisions, options.log, options.backlog),
    // Only an HTTP/1.1 server is created here, so the request is always an IncomingMessage.
    fallback: (req, res) => routes(req as IncomingMessage, res as ServerResponse),
    // The Connect protocol only. gRPC and gRPC-web bodies would be parsed by protobuf-es (lossy
    // UTF-8, 32-bit costs, 500 on a truncated body: see binary-decisions.ts); gRPC clients have
    // the gRPC port, whose decoder is strict. Those content types get 415.
    grpc: false,
    grpcWeb: false,
    readMaxBytes: options.maxMessageBytes,
    writeMaxBytes: options.maxMessageBytes,
    jsonOptions: JSON_OPTIONS,
  });
  return createServer((req, res) => {
    const binary = binaryDecisionMethod(req);
    if (binary === undefined) handler(req, res);
    else void serveBinaryDecision(binary, req, res, options);
  });
}

export async function listenHttp(server: Server, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address();
  return typeof bound === "object" && bound !== null ? bound.port : port;
}

/** Stops accepting, lets in-flight requests finish, then drops idle keep-alive connections. */
export async function closeHttp(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  await closed;
}
