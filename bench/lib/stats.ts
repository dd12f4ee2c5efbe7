// Small statistics helpers: medians across rounds, percentiles of latency samples.

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Nearest-rank percentile of an already sorted array; `p` in [0, 100]. */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export interface LatencySummary {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly count: number;
}

/** Summarises latencies (any unit); sorts the array in place. */
export function summarise(latencies: Float64Array): LatencySummary {
  latencies.sort();
  return {
    p50: percentileSorted(latencies, 50),
    p90: percentileSorted(latencies, 90),
    p99: percentileSorted(latencies, 99),
    max: latencies.length > 0 ? (latencies[latencies.length - 1] as number) : Number.NaN,
    count: latencies.length,
  };
}

/** Max/min over the median: how much rounds disagreed, reported so drift is visible. */
export function spread(values: readonly number[]): number {
  const m = median(values);
  if (values.length === 0 || m === 0) return Number.NaN;
  return (Math.max(...values) - Math.min(...values)) / m;
}
