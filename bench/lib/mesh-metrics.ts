// What the replication rows read from a replica's Prometheus text: replication bytes and deltas
// per peer, the lag histogram, decisions by policy and result. Counters and histogram buckets
// are cumulative since the process started, so a figure over a window is the difference of
// two scrapes.

export interface LagHistogram {
  /** Upper bounds in seconds, ascending, +Inf last. */
  readonly bounds: readonly number[];
  /** Cumulative counts per bound (Prometheus `le` semantics). */
  readonly cumulative: readonly number[];
}

export interface ReplicaScrape {
  /** Replication payload bytes and deltas sent, by peer node. */
  readonly bytesSent: ReadonlyMap<string, number>;
  readonly deltasSent: ReadonlyMap<string, number>;
  readonly bytesReceived: ReadonlyMap<string, number>;
  readonly lag: LagHistogram;
  /** `tokenmesh_decisions_total`, by `policy/result` (result: allowed or denied). */
  readonly decisions: ReadonlyMap<string, number>;
}

function labelled(text: string, name: string, label: string): Map<string, number> {
  const out = new Map<string, number>();
  const re = new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, "gm");
  for (const m of text.matchAll(re)) {
    const value = new RegExp(`${label}="([^"]*)"`).exec(m[1] ?? "")?.[1];
    if (value !== undefined) out.set(value, (out.get(value) ?? 0) + Number(m[2]));
  }
  return out;
}

export function parseScrape(text: string): ReplicaScrape {
  const buckets: [number, number][] = [];
  for (const m of text.matchAll(/^tokenmesh_replication_lag_seconds_bucket\{le="([^"]+)"\} (\S+)$/gm)) {
    buckets.push([m[1] === "+Inf" ? Number.POSITIVE_INFINITY : Number(m[1]), Number(m[2])]);
  }
  buckets.sort((a, b) => a[0] - b[0]);
  const decisions = new Map<string, number>();
  for (const m of text.matchAll(/^tokenmesh_decisions_total\{([^}]*)\} (\S+)$/gm)) {
    const policy = /policy="([^"]*)"/.exec(m[1] ?? "")?.[1];
    const result = /result="([^"]*)"/.exec(m[1] ?? "")?.[1];
    if (policy !== undefined && result !== undefined) decisions.set(`${policy}/${result}`, Number(m[2]));
  }
  return {
    bytesSent: labelled(text, "tokenmesh_peer_bytes_sent_total", "peer"),
    deltasSent: labelled(text, "tokenmesh_peer_deltas_sent_total", "peer"),
    bytesReceived: labelled(text, "tokenmesh_peer_bytes_received_total", "peer"),
    lag: { bounds: buckets.map((b) => b[0]), cumulative: buckets.map((b) => b[1]) },
    decisions,
  };
}

function diffMap(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of b) out.set(k, v - (a.get(k) ?? 0));
  return out;
}

/** What happened between two scrapes of the same process. */
export function diffScrape(before: ReplicaScrape, after: ReplicaScrape): ReplicaScrape {
  const cumulative = after.lag.cumulative.map((c, i) => c - (before.lag.cumulative[i] ?? 0));
  return {
    bytesSent: diffMap(before.bytesSent, after.bytesSent),
    deltasSent: diffMap(before.deltasSent, after.deltasSent),
    bytesReceived: diffMap(before.bytesReceived, after.bytesReceived),
    lag: { bounds: after.lag.bounds, cumulative },
    decisions: diffMap(before.decisions, after.decisions),
  };
}

export function sum(m: ReadonlyMap<string, number>): number {
  let s = 0;
  for (const v of m.values()) s += v;
  return s;
}

/** Adds histograms with the same bounds (several replicas' lag). */
export function mergeLag(hs: readonly LagHistogram[]): LagHistogram {
  const first = hs[0];
  if (first === undefined) return { bounds: [], cumulative: [] };
  return { bounds: first.bounds, cumulative: first.bounds.map((_, i) => hs.reduce((s, h) => s + (h.cumulative[i] ?? 0), 0)) };
}

export function lagCount(h: LagHistogram): number {
  return h.cumulative[h.cumulative.length - 1] ?? 0;
}

/**
 * The q-quantile of a histogram, two ways: linear interpolation inside the bucket that holds it
 * (what Prometheus' histogram_quantile does; the first bucket starts at 0) and that bucket's
 * upper bound (a guaranteed upper bound on the true quantile). Seconds; NaN when empty.
 */
export function lagQuantile(h: LagHistogram, q: number): { interpolated: number; bucketBound: number } {
  const total = lagCount(h);
  if (total === 0) return { interpolated: Number.NaN, bucketBound: Number.NaN };
  const rank = q * total;
  for (let i = 0; i < h.bounds.length; i++) {
    const c = h.cumulative[i] as number;
    if (c < rank) continue;
    const upper = h.bounds[i] as number;
    const lower = i === 0 ? 0 : (h.bounds[i - 1] as number);
    const below = i === 0 ? 0 : (h.cumulative[i - 1] as number);
    // Past the last finite bound there is nothing to interpolate towards.
    if (!Number.isFinite(upper)) return { interpolated: lower, bucketBound: upper };
    const inBucket = c - below;
    const interpolated = inBucket === 0 ? upper : lower + ((upper - lower) * (rank - below)) / inBucket;
    return { interpolated, bucketBound: upper };
  }
  return { interpolated: Number.NaN, bucketBound: Number.NaN };
}

/** Share of samples at or under `seconds`, exact when `seconds` is a bucket bound, else undefined. */
export function shareAtOrBelow(h: LagHistogram, seconds: number): number | undefined {
  const i = h.bounds.findIndex((b) => Math.abs(b - seconds) < 1e-9);
  const total = lagCount(h);
  if (i < 0 || total === 0) return undefined;
  return (h.cumulative[i] as number) / total;
}
