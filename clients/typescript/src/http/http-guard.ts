// What the Express and Fastify adapters share: which buckets an HTTP request is charged to, the
// decision, and the response fields that follow from it. The adapters only write them out.

import type { IncomingHttpHeaders } from "node:http";
import type { Limiter } from "../limiter.js";
import type { Decision } from "../types.js";
import { rateLimitHeaders, retryAfterSeconds } from "./ratelimit-headers.js";

/** The parts of a request the key helpers read; Express and Fastify requests both have them. */
export interface HttpRequestLike {
  readonly ip?: string | undefined;
  readonly headers: IncomingHttpHeaders;
}

export interface KeyedBucket {
  readonly policy: string;
  readonly key: string;
  readonly cost?: number;
}

export interface HttpLimitOptions<Req> {
  readonly limiter: Limiter;
  /** Policy for the single-bucket form (with `key`). */
  readonly policy?: string;
  /** The bucket key for a request; undefined lets the request through uncounted. */
  readonly key?: (req: Req) => string | undefined;
  /** Or: every bucket a request is charged to (e.g. per user and per tenant), all-or-nothing. */
  readonly buckets?: (req: Req) => readonly KeyedBucket[] | undefined;
  /** Body of 429 responses. Default: a short JSON error. */
  readonly deniedBody?: (decision: Decision) => string;
}

export interface Verdict {
  readonly allowed: boolean;
  readonly status: 200 | 429;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: string;
  readonly decision: Decision;
}

/** Ready-made key functions. */
export const keyFrom = {
  /** The client address as the framework sees it (configure its trust-proxy setting first). */
  ip: (req: HttpRequestLike): string | undefined => req.ip,
  /** A request header, e.g. `keyFrom.header("x-api-key")`; the first value if repeated. */
  header:
    (name: string) =>
    (req: HttpRequestLike): string | undefined => {
      const v = req.headers[name.toLowerCase()];
      const first = Array.isArray(v) ? v[0] : v;
      return first === undefined || first === "" ? undefined : first;
    },
};

const defaultBody = (d: Decision): string => JSON.stringify({ error: "rate limited", retryAfterMs: d.retryAfterMs });

export function makeGuard<Req>(options: HttpLimitOptions<Req>): (req: Req) => Promise<Verdict | undefined> {
  const { limiter, policy, key, buckets } = options;
  if ((buckets === undefined) === (key === undefined && policy === undefined)) {
    throw new TypeError("rate-limit middleware: give either { policy, key } or { buckets }");
  }
  if (buckets === undefined && (policy === undefined || key === undefined)) {
    throw new TypeError("rate-limit middleware: { policy, key } needs both a policy name and a key function");
  }
  const deniedBody = options.deniedBody ?? defaultBody;

  return async (req) => {
    let chosen: readonly KeyedBucket[] | undefined;
    if (buckets !== undefined) chosen = buckets(req);
    else {
      const k = key?.(req);
      chosen = k === undefined ? undefined : [{ policy: policy as string, key: k }];
    }
    if (chosen === undefined || chosen.length === 0) return undefined;
    const decision = await limiter.consume({ buckets: chosen });
    const headers: [string, string][] = Object.entries(rateLimitHeaders(decision) ?? {});
    if (decision.allowed) return { allowed: true, status: 200, headers, body: "", decision };
    headers.push(["Retry-After", String(retryAfterSeconds(decision))]);
    return { allowed: false, status: 429, headers, body: deniedBody(decision), decision };
  };
}
