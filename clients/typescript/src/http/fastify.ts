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

export function fastifyRateLimit<Req extends HttpRequestLike = HttpRequestLike, Reply extends FastifyReplyLike = FastifyReplyLike>(
  options: HttpLimitOptions<Req>,
) {
  const guard = makeGuard(options);
  // An async hook that answers early must send and then return the reply (Fastify's Hooks docs,
  // "Respond to a request from a hook"); returning nothing lets the request go on to its route.
  return async (request: Req, reply: Reply): Promise<Reply | undefined> => {
    const verdict = await guard(request);
    if (verdict === undefined) return undefined;
    for (const [name, value] of verdict.headers) reply.header(name, value);
    if (verdict.allowed) return undefined;
    reply.code(verdict.status);
    reply.header("Content-Type", "application/json; charset=utf-8");
    reply.send(verdict.body);
    return reply;
  };
}
