// Loads and summaries the scenarios share. Load ids are shared on purpose: the saturating
// 10k-key run of tokenmesh serves the throughput, CPU and batch rows alike.

import type { KeySpace } from "../lib/keys.ts";
import type { Measurement } from "../lib/load.ts";
import type { LoadNeed, Results, ScenarioContext } from "../lib/scenario.ts";
import { median, spread } from "../lib/stats.ts";
import { BENCH_POLICY, type TargetName } from "../lib/targets.ts";

export const TEN_K: KeySpace = { size: 10_000, distribution: "uniform" };
export const ONE_KEY: KeySpace = { size: 1, distribution: "uniform" };

/** Several connections with ~32 streams each load a grpc-js server best on this machine. */
export const SATURATE = { connections: 4, streamsPerConnection: 32 } as const;

export function base(ctx: ScenarioContext, seconds: number): Omit<LoadNeed["spec"], "connections" | "streamsPerConnection" | "ratePerSecond" | "keySpace" | "decisionsPerCall"> {
  return {
    warmupS: ctx.settings.warmupS,
    durationS: seconds,
    // Bound in calls as well as seconds: far above what one core can answer in that time.
    maxRequests: Math.ceil((ctx.settings.warmupS + seconds) * 100_000),
    policy: BENCH_POLICY.name,
    seed: ctx.settings.seed,
  };
}

export function saturateId(target: TargetName, decisionsPerCall: number): string {
  return `${target}:saturate:10k:${decisionsPerCall}/call`;
}

/**
 * Closed loop at full pressure over 10k uniform keys. The floor answers a constant whatever the
 * key, so it gets h2load with one fixed body: the Node driver costs about as much CPU per call
 * as the floor itself and would under-state it (and flatter tokenmesh's ratio).
 */
export function saturate(ctx: ScenarioContext, target: TargetName, decisionsPerCall = 1): LoadNeed {
  // Big batches need fewer streams in flight to keep the server busy.
  const streams = decisionsPerCall > 1 ? 8 : SATURATE.streamsPerConnection;
  const keysIgnored = target === "floor";
  return {
    id: saturateId(target, decisionsPerCall),
    target,
    spec: {
      ...base(ctx, ctx.settings.runS),
      connections: SATURATE.connections,
      streamsPerConnection: streams,
      ratePerSecond: null,
      keySpace: keysIgnored ? ONE_KEY : TEN_K,
      decisionsPerCall,
      preferH2load: keysIgnored,
    },
  };
}

export function lowLoadId(target: TargetName): string {
  return `${target}:low-load:10k`;
}

/** One connection, one call in flight: the latency a caller adds to each request. */
export function lowLoad(ctx: ScenarioContext, target: TargetName): LoadNeed {
  return {
    id: lowLoadId(target),
    target,
    spec: { ...base(ctx, ctx.settings.lowLoadS), connections: 1, streamsPerConnection: 1, ratePerSecond: null, keySpace: TEN_K, decisionsPerCall: 1 },
  };
}

export function atRateId(target: TargetName): string {
  return `${target}:fixed-rate:10k`;
}

/** Open loop at a fixed offered rate (latency measured from each call's scheduled start). */
export function atRate(ctx: ScenarioContext, target: TargetName, ratePerSecond: number): LoadNeed {
  return {
    id: atRateId(target),
    target,
    spec: { ...base(ctx, ctx.settings.runS), connections: SATURATE.connections, streamsPerConnection: 1, ratePerSecond, keySpace: TEN_K, decisionsPerCall: 1 },
  };
}

export interface Summary {
  readonly median: number;
  readonly values: readonly number[];
  /** Rounds, spread and any gRPC or transport failure, for the row's note. */
  readonly note: string;
}

export function summarise(results: Results, id: string, pick: (m: Measurement) => number): Summary | undefined {
  const runs = results.get(id);
  if (runs === undefined || runs.length === 0) return undefined;
  const values = runs.map(pick).filter(Number.isFinite);
  const failures = runs.reduce((n, m) => n + m.serverErrors + Object.values(m.clientFailures).reduce((a, b) => a + b, 0), 0);
  const drivers = [...new Set(runs.map((m) => m.driver))].join("+");
  const note = `${values.length} rounds, spread ${(spread(values) * 100).toFixed(0)}%, ${drivers} driver${failures > 0 ? `, ${failures} FAILED calls` : ""}`;
  return { median: median(values), values, note };
}

/** Median share of one core the service used over the runs: near 100% means saturated. */
export function cpuShare(results: Results, id: string): string {
  const runs = results.get(id) ?? [];
  return `${(median(runs.map((m) => m.serviceCpuShare)) * 100).toFixed(0)}% core`;
}
