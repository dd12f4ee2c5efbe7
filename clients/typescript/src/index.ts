// Public surface of @tokenmesh/client. Everything not exported here is internal.

export type { Scheduler } from "./batcher.js";
export { Status, TokenmeshError } from "./errors.js";
export type { ExpressNext } from "./http/express.js";
export { expressRateLimit } from "./http/express.js";
export type { FastifyReplyLike } from "./http/fastify.js";
export { fastifyRateLimit } from "./http/fastify.js";
export { type HttpLimitOptions, type HttpRequestLike, type KeyedBucket, keyFrom } from "./http/http-guard.js";
export { type RateLimitHeaderFields, rateLimitHeaders } from "./http/ratelimit-headers.js";
export { createLimiter, type Limiter, type LimiterStats } from "./limiter.js";
export type { LimiterOptions, Logger } from "./options.js";
export type { TlsOptions } from "./transport.js";
export type { BucketRequest, BucketStatus, Decision, DecisionRequest, DecisionSource, InlineLimit } from "./types.js";
