// Fastify (4 and 5) onRequest hook: `app.addHook("onRequest", fastifyRateLimit({ ... }))`.
// Same behaviour as the Express middleware; typed structurally so the package does not depend
// on fastify. Add it at the root (not inside an encapsulated plugin) to cover every route.

import { type HttpLimitOptions, type HttpRequestLike, makeGuard } from "./http-guard.js";

/** The parts of a Fastify reply the hook uses. */
export interface FastifyReplyLike {
  header(name: string, value: string): unknown;
  code(statusCode: number): unknown;
  send(payload: string): unknown;
}

export function fastifyRateLimit<Req extends HttpRequestLike = HttpRequestLike>(options: HttpLimitOptions<Req>) {
  const guard = makeGuard(options);
  // An async hook that sends a reply ends the request there; returning without sending continues.
  return async (request: Req, reply: FastifyReplyLike): Promise<void> => {
    const verdict = await guard(request);
    if (verdict === undefined) return;
    for (const [name, value] of verdict.headers) reply.header(name, value);
    if (verdict.allowed) return;
    reply.code(verdict.status);
    reply.header("Content-Type", "application/json; charset=utf-8");
    reply.send(verdict.body);
  };
}
