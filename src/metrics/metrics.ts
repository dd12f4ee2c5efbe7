// Prometheus metrics for one process. Per-decision counts are kept in plain numbers on the hot
// path and handed to prom-client when scraped: label lookups cost about a microsecond each,
// which at hundreds of thousands of decisions per second would dominate the handler.
//
// Series that alerts rely on (a policy's denials, unsafe evictions) are exported at 0 from the
// start: `increase()` and ratios over a series that appears only with its first event miss it.

import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { BuildInfo } from "./build-info.ts";
import { CallHistogram } from "./call-histogram.ts";

/** How often the default metrics sample event-loop delay (prom-client default: 10). */
const EVENT_LOOP_SAMPLE_MS = 100;

export interface DecisionTally {
  allowed: number;
  denied: number;
}

export interface MetricsSources {
  keysHeld(): number;
  evictions(): { safe: number; unsafe: number };
  /** False while a mesh replica warms up; a standalone replica is always ready. */
  ready(): boolean;
}

export interface MetricsOptions {
  /** Policies whose allowed and denied counts start at 0. */
  readonly policies?: Iterable<string>;
  readonly build?: BuildInfo;
  readonly defaultMetrics?: boolean;
}

/** A gRPC method as Prometheus labels (the grpc_* names used by grpc-ecosystem's exporters). */
export interface GrpcLabels {
  readonly grpc_service: string;
  readonly grpc_method: string;
}

type RequestLabel = "grpc_service" | "grpc_method" | "grpc_code";

export class Metrics {
  readonly registry = new Registry();
  readonly #tally = new Map<string, DecisionTally>();
  readonly #reported = new Map<string, DecisionTally>();
  readonly #decisions: Counter<"policy" | "result">;
  /** Observed through `series()` handles that callers keep (see call-histogram.ts). */
  readonly requestSeconds: CallHistogram<RequestLabel>;

  constructor(sources: MetricsSources, options: MetricsOptions = {}) {
    const registers = [this.registry];
    // The event-loop lag histogram samples on a libuv timer: prom-client's default of every 10 ms
    // costs an idle replica about 1.4% of a core by itself; every 100 ms it is a tenth of that,
    // and lag the histogram reports is still measured to the nanosecond.
    if (options.defaultMetrics !== false)
      collectDefaultMetrics({ register: this.registry, prefix: "tokenmesh_", eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    const tally = this.#tally;
    const reported = this.#reported;
    this.#decisions = new Counter({
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
    this.requestSeconds = new CallHistogram({
      name: "tokenmesh_request_duration_seconds",
      help: "Handler time per RPC, by gRPC service, method and status code.",
      labelNames: ["grpc_service", "grpc_method", "grpc_code"] as const,
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
      registry: this.registry,
    });
    new Gauge({
      name: "tokenmesh_keys",
      help: "Buckets held in memory.",
      registers,
      collect() {
        this.set(sources.keysHeld());
      },
    });
    new Gauge({
      name: "tokenmesh_ready",
      help: "1 while this replica admits; 0 while a new mesh incarnation warms up (first sync with a peer, or mesh.warmupTimeout).",
      registers,
      collect() {
        this.set(sources.ready() ? 1 : 0);
      },
    });
    const build = options.build;
    if (build !== undefined) {
      new Gauge({
        name: "tokenmesh_build_info",
        help: "Always 1; its labels say which tokenmesh version and commit this process runs.",
        labelNames: ["version", "commit"] as const,
        registers,
        async collect() {
          const commit = await build.commit;
          this.reset();
          this.set({ version: build.version, commit }, 1);
        },
      });
    }
    let seen = { safe: 0, unsafe: 0 };
    const evictions = new Counter({
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
    for (const kind of ["safe", "unsafe"]) evictions.inc({ kind }, 0);
    this.knowPolicies(options.policies ?? []);
  }

  /** Exports allowed and denied at 0 for these policies (at start, and for policies added later). */
  knowPolicies(names: Iterable<string>): void {
    for (const policy of names) {
      for (const result of ["allowed", "denied"]) this.#decisions.inc({ policy, result }, 0);
    }
  }

  /** Exports a latency series for each method before its first call, so dashboards show them from the start. */
  knowMethods(methods: Iterable<GrpcLabels>): void {
    for (const m of methods) this.requestSeconds.zero({ ...m, grpc_code: "OK" });
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
