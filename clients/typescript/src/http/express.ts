// Express (4 and 5) middleware: charges each request to its bucket(s), sets the RateLimit header
// fields on every response that carries a decision, and answers 429 with Retry-After when denied.
//
// Typed structurally (a Node ServerResponse and a request with `ip` and `headers`), so the
// package depends on neither express nor @types/express.

import type { ServerResponse } from "node:http";
import { type HttpLimitOptions, type HttpRequestLike, makeGuard } from "./http-guard.js";

export type ExpressNext = (err?: unknown) => void;

/**
 * `app.use(expressRateLimit({ limiter, policy: "api", key: keyFrom.header("x-api-key") }))`.
 * Errors from the limiter (a wrong policy name, say) go to `next(err)`; an unreachable service
 * is answered by the limiter's fail mode instead.
 */
export function expressRateLimit<Req extends HttpRequestLike = HttpRequestLike>(options: HttpLimitOptions<Req>) {
  const guard = makeGuard(options);
  return (req: Req, res: ServerResponse, next: ExpressNext): void => {
    guard(req).then(
      (verdict) => {
        if (verdict === undefined) return next();
        for (const [name, value] of verdict.headers) res.setHeader(name, value);
        if (verdict.allowed) return next();
        res.statusCode = verdict.status;
        res.setHeader("Content-Type", "application/json; charset=utf-8");
        res.end(verdict.body);
      },
      (err: unknown) => next(err),
    );
  };
}
