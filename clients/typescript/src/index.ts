// Public surface of @tokenmesh/client. Everything not exported here is internal.

export type { Scheduler } from "./batcher.ts";
export { Status, TokenmeshError } from "./errors.ts";
export type { ExpressNext } from "./http/express.ts";
export { expressRateLimit } from "./http/express.ts";
export type { FastifyReplyLike } from "./http/fastify.ts";
export { fastifyRateLimit } from "./http/fastify.ts";
export { type HttpLimitOptions, type HttpRequestLike, type KeyedBucket, keyFrom } from "./http/http-guard.ts";
export { type RateLimitHeaderFields, rateLimitHeaders } from "./http/ratelimit-headers.ts";
export { createLimiter, type Limiter, type LimiterStats } from "./limiter.ts";
export type { LimiterOptions, Logger } from "./options.ts";
export type { TlsOptions } from "./transport.ts";
export type { BucketRequest, BucketStatus, Decision, DecisionRequest, DecisionSource, InlineLimit } from "./types.ts";
