// GET /v1/check?policy=P&key=K[&cost=N]: one Consume for scripts, proxies and gateway plugins.
// 200 when allowed, 429 when denied (with Retry-After), both with RateLimit and RateLimit-Policy
// headers and a small JSON body. Bad input is 400 with the decision service's message, the field
// named as the query names it (`key: must be 1..256 bytes ...`).

import { isUtf8 } from "node:buffer";
import type { ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { DecisionService } from "../server/decision-service.ts";
import { invalidArgument, TokenmeshError } from "../server/errors.ts";
import { rateLimitHeaders, secondsUp } from "../server/ratelimit-headers.ts";
import { logRefused, refusedBy } from "./connect-rate-limiter.ts";

const PARAMETERS = new Set(["policy", "key", "cost"]);
/** The validator names fields by their place in a ConsumeRequest; the query names them alone. */
const BUCKET_FIELD = "decisions[0].buckets[0].";

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers }).end(text);
}

/** `message`: the error's text unless given (the check endpoint names fields as its query does). */
export function sendError(res: ServerResponse, error: TokenmeshError, message = error.details): void {
  sendJson(res, error.httpStatus, { code: error.codeName, message });
}

/**
 * The first parameter whose percent-decoded bytes are not UTF-8. URLSearchParams turns each bad
 * byte into U+FFFD, so keys %FF, %FE and %80 would share one bucket: the raw query is read first.
 */
function notUtf8Parameter(rawQuery: string): TokenmeshError | undefined {
  for (const pair of rawQuery.replace(/^\?/, "").split("&")) {
    const at = pair.indexOf("=");
    for (const [i, part] of (at < 0 ? [pair] : [pair.slice(0, at), pair.slice(at + 1)]).entries()) {
      const bytes = percentDecoded(part.replace(/\+/g, " "));
      if (isUtf8(bytes)) continue;
      const name = i === 0 ? "query parameter name" : (new URLSearchParams(pair).keys().next().value ?? "");
      const hex = [...bytes.subarray(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
      return invalidArgument(
        name,
        `must be valid UTF-8; got ${bytes.length} bytes that are not (${hex}${bytes.length > 16 ? " ..." : ""})`,
      );
    }
  }
  return undefined;
}

/** Bytes of a percent-encoded string (a `%` not followed by two hex digits stays as it is, as URLSearchParams keeps it). */
function percentDecoded(text: string): Buffer {
  const out: number[] = [];
  const raw = Buffer.from(text, "utf8");
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i] as number;
    const hex = b === 0x25 ? raw.subarray(i + 1, i + 3).toString("latin1") : "";
    if (/^[0-9a-fA-F]{2}$/.test(hex)) {
      out.push(Number.parseInt(hex, 16));
      i += 2;
    } else out.push(b);
  }
  return Buffer.from(out);
}

function parseCheck(rawQuery: string, query: URLSearchParams): { policy: string; key: string; cost: number | undefined } | TokenmeshError {
  const notUtf8 = notUtf8Parameter(rawQuery);
  if (notUtf8 !== undefined) return notUtf8;
  for (const name of query.keys()) {
    if (!PARAMETERS.has(name)) return invalidArgument(name, "unknown query parameter (expected policy, key and optionally cost)");
  }
  for (const name of PARAMETERS) if (query.getAll(name).length > 1) return invalidArgument(name, "given more than once");
  const costText = query.get("cost");
  let cost: number | undefined;
  if (costText !== null) {
    cost = /^\d{1,10}$/.test(costText) ? Number(costText) : Number.NaN;
    if (!(cost <= 4_294_967_295)) return invalidArgument("cost", `must be a whole number in 1..4294967295, got "${costText.slice(0, 32)}"`);
  }
  return { policy: query.get("policy") ?? "", key: query.get("key") ?? "", cost };
}

export function serveCheck(decisions: DecisionService, url: URL, res: ServerResponse, log: Logger): void {
  const parsed = parseCheck(url.search, url.searchParams);
  if (parsed instanceof TokenmeshError) {
    logRefused(log, "GET /v1/check", parsed);
    sendError(res, parsed);
    return;
  }
  let answers: ReturnType<DecisionService["consume"]>;
  try {
    answers = decisions.consume({ decisions: [{ buckets: [parsed] }] });
  } catch (err) {
    const refused = refusedBy(err, log, "GET /v1/check");
    const message = refused.details.startsWith(BUCKET_FIELD) ? refused.details.slice(BUCKET_FIELD.length) : refused.details;
    sendError(res, refused, message);
    return;
  }
  const outcome = answers.outcomes[0] as (typeof answers.outcomes)[number];
  const bucket = outcome.buckets[0] as (typeof outcome.buckets)[number];
  const rate = bucket.rate; // in force for this key
  const headers: Record<string, string> = {
    ...rateLimitHeaders({
      name: parsed.policy,
      quota: rate.capacity,
      windowSeconds: secondsUp(rate.fillTimeUs),
      remaining: bucket.remaining,
      resetSeconds: secondsUp(outcome.allowed ? bucket.resetAfterUs : outcome.retryAfterUs),
    }),
  };
  if (!outcome.allowed) headers["retry-after"] = String(Math.max(1, secondsUp(outcome.retryAfterUs)));
  sendJson(
    res,
    outcome.allowed ? 200 : 429,
    {
      allowed: outcome.allowed,
      remaining: bucket.remaining,
      retryAfterMs: Math.ceil(outcome.retryAfterUs / 1000),
      resetAfterMs: Math.ceil(bucket.resetAfterUs / 1000),
      limit: { capacity: rate.capacity, refillTokens: rate.refillTokens, refillPeriodMs: Math.ceil(rate.refillPeriodUs / 1000) },
      // Strict policies: why a denial (tokens: this replica's share is empty for now; escrow: it holds no share).
      ...(outcome.denyReasons?.[0] === undefined ? {} : { denyReason: outcome.denyReasons[0] }),
      ...(outcome.heldTokens?.[0] === undefined ? {} : { heldTokens: outcome.heldTokens[0] }),
    },
    headers,
  );
}
