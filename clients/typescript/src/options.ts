// Limiter options: validated and defaulted once, at construction, with a TypeError that names
// the offending option (never a surprise on the first call).

import { realScheduler, type Scheduler } from "./batcher.js";
import type { TlsOptions } from "./transport.js";

/** pino-compatible: `logger.warn({ err }, "message")`. */
export interface Logger {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

export interface LimiterOptions {
  /** One tokenmesh address, `host:port`. Give this or `addresses`. */
  readonly address?: string;
  /** Several replicas, tried in order; the one that answered last is tried first. */
  readonly addresses?: readonly string[];
  /** TLS: `true` for the system roots, or explicit PEM buffers. Default: plaintext. */
  readonly tls?: boolean | TlsOptions;
  /** Deadline of one RPC including failover and retries, in ms. Default 250. */
  readonly deadlineMs?: number;
  /** What to answer when no address answered in time: allow ("open", the default) or deny. */
  readonly failMode?: "open" | "closed";
  /** The retry-after given with fail-closed denials, in ms. Default 1000. */
  readonly failClosedRetryAfterMs?: number;
  /** Coalescing of concurrent calls; `false` sends one RPC per call. */
  readonly batch?: false | { readonly windowMs?: number; readonly maxSize?: number };
  /** Local answers for recently denied buckets; `false` disables it. */
  readonly denyCache?: false | { readonly maxEntries?: number };
  /** Attempts per address for Query (which is safe to retry). Default 2. */
  readonly queryAttempts?: number;
  readonly logger?: Logger;
  /** Monotonic clock in ms (tests inject one). Default `performance.now`. */
  readonly now?: () => number;
  /** Opens batch windows (tests inject one). */
  readonly scheduler?: Scheduler;
}

export interface ResolvedOptions {
  readonly addresses: readonly string[];
  readonly tls: boolean | TlsOptions;
  readonly deadlineMs: number;
  readonly failMode: "open" | "closed";
  readonly failClosedRetryAfterMs: number;
  /** maxSize 1 means no batching. */
  readonly batch: { readonly windowMs: number; readonly maxSize: number };
  readonly denyCacheEntries: number;
  readonly queryAttempts: number;
  readonly logger: Logger;
  readonly now: () => number;
  readonly scheduler: Scheduler;
}

/** The service's default cap on decisions per request; above it the whole request is refused. */
export const SERVER_BATCH_CAP = 1000;

const consoleLogger: Logger = {
  warn: (fields, message) => console.warn(`tokenmesh client: ${message}`, fields),
  info: (fields, message) => console.info(`tokenmesh client: ${message}`, fields),
};

function number(name: string, value: number | undefined, fallback: number, min: number, max: number, integer: boolean): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new TypeError(`createLimiter: ${name} must be ${integer ? "an integer" : "a number"} in ${min}..${max}, got ${String(value)}`);
  }
  return value;
}

function addressesOf(options: LimiterOptions): readonly string[] {
  const { address, addresses } = options;
  if ((address === undefined) === (addresses === undefined)) {
    throw new TypeError("createLimiter: give exactly one of address or addresses");
  }
  const list = address !== undefined ? [address] : [...(addresses ?? [])];
  if (list.length === 0) throw new TypeError("createLimiter: addresses must not be empty");
  for (const a of list) {
    if (typeof a !== "string" || a.length === 0)
      throw new TypeError(`createLimiter: address must be a non-empty "host:port", got ${String(a)}`);
  }
  return list;
}

export function resolveOptions(options: LimiterOptions): ResolvedOptions {
  const failMode = options.failMode ?? "open";
  if (failMode !== "open" && failMode !== "closed") {
    throw new TypeError(`createLimiter: failMode must be "open" or "closed", got ${String(failMode)}`);
  }
  const batch = options.batch === false ? { windowMs: 0, maxSize: 1 } : options.batch;
  const deny = options.denyCache === false ? { maxEntries: 0 } : options.denyCache;
  return {
    addresses: addressesOf(options),
    tls: options.tls ?? false,
    deadlineMs: number("deadlineMs", options.deadlineMs, 250, 1, 3_600_000, false),
    failMode,
    failClosedRetryAfterMs: number("failClosedRetryAfterMs", options.failClosedRetryAfterMs, 1000, 0, 3_600_000, true),
    batch: {
      windowMs: number("batch.windowMs", batch?.windowMs, 0, 0, 1000, false),
      maxSize: number("batch.maxSize", batch?.maxSize, SERVER_BATCH_CAP, 1, 100_000, true),
    },
    denyCacheEntries: number("denyCache.maxEntries", deny?.maxEntries, 10_000, 0, 10_000_000, true),
    queryAttempts: number("queryAttempts", options.queryAttempts, 2, 1, 10, true),
    logger: options.logger ?? consoleLogger,
    now: options.now ?? (() => performance.now()),
    scheduler: options.scheduler ?? realScheduler,
  };
}
