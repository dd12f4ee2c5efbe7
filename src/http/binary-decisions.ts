// Consume and Query as binary protobuf over the Connect protocol (unary, `application/proto`),
// decoded by the gRPC door's strict decoder instead of Connect's parser.
//
// Connect parses binary bodies with protobuf-es's `fromBinary`, which decodes a string that is
// not UTF-8 by throwing (answered 500 internal) and keeps the low 32 bits of a cost (2^32 + 5 is
// charged as 5); a truncated body is 500 too. Neither parser can be swapped through Connect's
// options, so these two routes are served here for that content type: the bytes go through
// `decodeOrMark` (src/server/request-decoder.ts) and the decision service exactly as on the gRPC
// door, so every refusal is 400 invalid_argument with the gRPC door's message, naming the field.
// The rest of the Connect unary protocol that a binary call can use is kept: `content-encoding`
// gzip or br (Connect's own decompressors, bounded by the same limit), `connect-timeout-ms`,
// `connect-protocol-version`, the error body `{"code","message"}` and its HTTP status. Answers
// are sent uncompressed, which every Connect client accepts.

import type { IncomingMessage, ServerResponse } from "node:http";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { arrivalDeadline, type BacklogSource, type CallTiming } from "../server/call-deadline.ts";
import type { DecisionService } from "../server/decision-service.ts";
import { invalidArgument, Status, TokenmeshError } from "../server/errors.ts";
import { decodeOrMark } from "../server/request-decoder.ts";
import { encodeDecisionAnswers } from "../server/response-encoder.ts";
import { refusedBy } from "./connect-rate-limiter.ts";

const PATHS: Record<string, "Consume" | "Query"> = {
  "/tokenmesh.v1.RateLimiter/Consume": "Consume",
  "/tokenmesh.v1.RateLimiter/Query": "Query",
};

/** Connect's unary binary content type (its own matcher has no parameters for `proto`). */
const UNARY_PROTO = /^application\/proto$/i;

/** The method this door serves for `req`, or undefined to leave the request to Connect. */
export function binaryDecisionMethod(req: IncomingMessage): "Consume" | "Query" | undefined {
  if (req.method !== "POST") return undefined;
  const type = req.headers["content-type"];
  if (type === undefined || !UNARY_PROTO.test(type.trim())) return undefined;
  const path = (req.url ?? "").split("?", 1)[0] ?? "";
  return PATHS[path];
}

function sendError(res: ServerResponse, err: TokenmeshError): void {
  const body = JSON.stringify({ code: err.codeName, message: err.details });
  res.writeHead(err.httpStatus, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/** `declared`: the Content-Length; absent when a chunked body passed the limit while read. */
function tooLarge(maxBytes: number, declared?: string): TokenmeshError {
  const size = declared === undefined ? "longer than" : `${declared} bytes is more than`;
  return new TokenmeshError(Status.RESOURCE_EXHAUSTED, "request body", `${size} limits.maxMessageBytes (${maxBytes})`);
}

/**
 * The whole body, refused from its Content-Length before it is read, or as soon as a chunked
 * body passes the limit; on refusal the connection is closed after the answer (rest unread).
 */
async function readBody(req: IncomingMessage, res: ServerResponse, maxBytes: number): Promise<Uint8Array> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > maxBytes) {
    res.shouldKeepAlive = false;
    throw tooLarge(maxBytes, declared);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > maxBytes) {
      res.shouldKeepAlive = false;
      throw tooLarge(maxBytes);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

const DECOMPRESSORS = { [compressionGzip.name]: compressionGzip, [compressionBrotli.name]: compressionBrotli };

async function decompressed(req: IncomingMessage, bytes: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  const encoding = (req.headers["content-encoding"] ?? "identity").trim().toLowerCase();
  if (encoding === "identity" || encoding === "") return bytes;
  const d = DECOMPRESSORS[encoding];
  if (d === undefined) {
    throw new TokenmeshError(
      Status.UNIMPLEMENTED,
      "content-encoding",
      `"${encoding.slice(0, 32)}" is not supported (supported: gzip, br, identity)`,
    );
  }
  return d.decompress(bytes, maxBytes);
}

/** connect-timeout-ms: up to 10 ASCII digits (the protocol's grammar); anything else is refused. */
function deadlineOf(req: IncomingMessage, now: number): number | undefined {
  const header = req.headers["connect-timeout-ms"];
  if (header === undefined) return undefined;
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || !/^\d{1,10}$/.test(value)) {
    throw invalidArgument("connect-timeout-ms", `must be 1..10 digits of milliseconds, got "${String(value).slice(0, 32)}"`);
  }
  return now + Number(value);
}

/** Connect-Protocol-Version: optional, and "1" when sent (the only version there is). */
function checkProtocolVersion(req: IncomingMessage): void {
  const version = req.headers["connect-protocol-version"];
  if (version !== undefined && version !== "1") {
    throw invalidArgument("connect-protocol-version", `must be "1", got "${String(version).slice(0, 32)}"`);
  }
}

export interface BinaryDecisionsOptions {
  readonly decisions: DecisionService;
  readonly log: Logger;
  readonly maxMessageBytes: number;
  /** Moves a late call's deadline back by the loop's backlog as its headers arrive (none: never). */
  readonly backlog?: BacklogSource | undefined;
}

/** Answers one binary Consume/Query call; never throws (every failure is a Connect error answer). */
export async function serveBinaryDecision(
  method: "Consume" | "Query",
  req: IncomingMessage,
  res: ServerResponse,
  options: BinaryDecisionsOptions,
): Promise<void> {
  const { decisions, log, maxMessageBytes } = options;
  // Aborted if the client goes away before its answer is written (like Connect's request signal).
  const gone = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) gone.abort();
  });
  try {
    checkProtocolVersion(req);
    // Read as the headers arrive, before the body: the backlog then is what this call waited behind.
    const deadlineMs = arrivalDeadline(deadlineOf(req, Date.now()), options.backlog);
    const bytes = await decompressed(req, await readBody(req, res, maxMessageBytes), maxMessageBytes);
    const timing: CallTiming = deadlineMs === undefined ? { signal: gone.signal } : { signal: gone.signal, deadlineMs };
    const request = decodeOrMark(bytes);
    const answers = method === "Consume" ? decisions.consume(request, timing) : decisions.query(request, request.includeReplicas, timing);
    const answer = encodeDecisionAnswers(answers);
    res.writeHead(200, { "content-type": "application/proto", "content-length": answer.byteLength });
    res.end(answer);
  } catch (err) {
    // A client that left mid-body is not a server failure: nothing to answer, nothing to log.
    if (gone.signal.aborted || res.destroyed) return;
    // Refused before its body was read (a bad header): close after the answer, rather than
    // have Node read and discard a body of any length to keep the connection.
    if (!req.complete) res.shouldKeepAlive = false;
    const refused = refusedBy(err, log, `/tokenmesh.v1.RateLimiter/${method}`);
    if (!res.headersSent) sendError(res, refused);
  }
}
