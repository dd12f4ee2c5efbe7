// Key spaces for the load drivers: which bucket key each request names.
//
// Keys are fixed-width (`k0000042`) so that a request body can be encoded once as a template and
// each request only overwrites the key's digits in place: encoding a fresh protobuf per request
// would cost the Node driver more CPU than the server spends on the call. Draws come from a
// seeded PRNG so two servers in the same run see the same key sequence.

/** "sequential" visits every key once in order (filling a store), then wraps around. */
export type KeyDistribution = "uniform" | "zipf" | "sequential";

export interface KeySpace {
  /** Number of distinct keys, 1 to 10,000,000. */
  readonly size: number;
  readonly distribution: KeyDistribution;
  /** Zipf exponent; 1.0 when absent (the classic "80/20"-ish web skew). */
  readonly zipfS?: number;
}

/** Digits in every key; enough for 10,000,000 keys. */
export const KEY_DIGITS = 7;

export function keyName(index: number): string {
  return `k${String(index).padStart(KEY_DIGITS, "0")}`;
}

/** mulberry32: small, fast, seeded; statistical quality is ample for picking keys. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A function returning key indices in [0, size). Zipf draws by binary search over the exact
 * cumulative distribution (8 bytes per key: 8 MB at 1M keys), which keeps rank 1 the hottest.
 */
export function keySampler(space: KeySpace, seed: number): () => number {
  if (!Number.isInteger(space.size) || space.size < 1 || space.size > 10_000_000) {
    throw new RangeError(`key space size must be 1..10,000,000, got ${space.size}`);
  }
  const random = seededRandom(seed);
  const n = space.size;
  if (n === 1) return () => 0;
  if (space.distribution === "sequential") {
    let next = 0;
    return () => {
      const k = next;
      next = (next + 1) % n;
      return k;
    };
  }
  if (space.distribution === "uniform") return () => Math.floor(random() * n);
  const s = space.zipfS ?? 1.0;
  const cdf = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    total += 1 / (i + 1) ** s;
    cdf[i] = total;
  }
  return () => {
    const u = random() * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

export function describeKeySpace(space: KeySpace): string {
  const size = space.size >= 1_000_000 ? `${space.size / 1_000_000}M` : space.size >= 1000 ? `${space.size / 1000}k` : `${space.size}`;
  return space.size === 1 ? "1 key" : `${size} keys ${space.distribution}`;
}
