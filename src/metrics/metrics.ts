// Prometheus metrics for one process. Per-decision counts are kept in plain numbers on the hot
// path and handed to prom-client when scraped: label lookups cost about a microsecond each,
// which at hundreds of thousands of decisions per second would dominate the handler.

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

export interface DecisionTally {
  allowed: number;
  denied: number;
}

export interface MetricsSources {
  keysHeld(): number;
  evictions(): { safe: number; unsafe: number };
}

export class Metrics {
  readonly registry = new Registry();
  readonly #tally = new Map<string, DecisionTally>();
  readonly #reported = new Map<string, DecisionTally>();
  readonly requestSeconds: Histogram<"method" | "code">;

  constructor(sources: MetricsSources, options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: "tokenmesh_" });
    const tally = this.#tally;
    const reported = this.#reported;
    new Counter({
      name: "tokenmesh_decisions_total",
      help: "Bucket decisions by policy and result (a decision over two buckets counts once per bucket).",
      labelNames: ["policy", "result"] as const,
      registers,
      collect() {
        for (const [policy, t] of tally) {
          const r = reported.get(policy) ?? { allowed: 0, denied: 0 };
          if (t.allowed > r.allowed) this.inc({ policy, result: "allowed" }, t.allowed - r.allowed);
          if (t.denied > r.denied) this.inc({ policy, result: "denied" }, t.denied - r.denied);
          reported.set(policy, { ...t });
        }
      },
    });
    this.requestSeconds = new Histogram({
      name: "tokenmesh_request_duration_seconds",
      help: "Handler time per RPC, by method and gRPC status code.",
      labelNames: ["method", "code"] as const,
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
      registers,
    });
    new Gauge({
      name: "tokenmesh_keys",
      help: "Buckets held in memory.",
      registers,
      collect() {
        this.set(sources.keysHeld());
      },
    });
    let seen = { safe: 0, unsafe: 0 };
    new Counter({
      name: "tokenmesh_evictions_total",
      help: "Buckets evicted by the LRU: kind=safe (was full, nothing lost) or unsafe (its debt was forgotten; raise limits.maxKeys).",
      labelNames: ["kind"] as const,
      registers,
      collect() {
        const now = sources.evictions();
        if (now.safe > seen.safe) this.inc({ kind: "safe" }, now.safe - seen.safe);
        if (now.unsafe > seen.unsafe) this.inc({ kind: "unsafe" }, now.unsafe - seen.unsafe);
        seen = { ...now };
      },
    });
  }

  /** Hot path: one call per bucket decided. */
  countDecision(policy: string, allowed: boolean): void {
    let t = this.#tally.get(policy);
    if (t === undefined) {
      t = { allowed: 0, denied: 0 };
      this.#tally.set(policy, t);
    }
    if (allowed) t.allowed++;
    else t.denied++;
  }
}
