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

export function base(
  ctx: ScenarioContext,
  seconds: number,
): Omit<LoadNeed["spec"], "connections" | "streamsPerConnection" | "ratePerSecond" | "keySpace" | "decisionsPerCall"> {
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
 * Closed loop at full pressure over 10k uniform keys, with the Node driver (h2load cannot vary
 * the key). The driver costs ~25 us of CPU per call, about what the floor costs, so it cannot
 * push a cheap server to 100% of its core: rows built on this load compare calls per CPU-second
 * of the service, measured server-side, and show the core share reached.
 */
export function saturate(ctx: ScenarioContext, target: TargetName, decisionsPerCall = 1): LoadNeed {
  // Big batches need fewer streams in flight to keep the server busy.
  const streams = decisionsPerCall > 1 ? 8 : SATURATE.streamsPerConnection;
  return {
    id: saturateId(target, decisionsPerCall),
    target,
    spec: {
      ...base(ctx, ctx.settings.runS),
      connections: SATURATE.connections,
      streamsPerConnection: streams,
      ratePerSecond: null,
      keySpace: TEN_K,
      decisionsPerCall,
    },
  };
}

export function hotId(target: TargetName): string {
  return `${target}:saturate:1-key:h2load`;
}

/**
 * Closed loop on one hot key with h2load (one fixed body), which is cheap enough to drive any
 * of the servers to its full core: the same-driver check on the per-CPU-second figures.
 */
export function saturateHot(ctx: ScenarioContext, target: TargetName): LoadNeed {
  return {
    id: hotId(target),
    target,
    spec: { ...base(ctx, ctx.settings.runS), ...SATURATE, ratePerSecond: null, keySpace: ONE_KEY, decisionsPerCall: 1, preferH2load: true },
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
    spec: {
      ...base(ctx, ctx.settings.lowLoadS),
      connections: 1,
      streamsPerConnection: 1,
      ratePerSecond: null,
      keySpace: TEN_K,
      decisionsPerCall: 1,
    },
  };
}

export function atRateId(target: TargetName): string {
  return `${target}:fixed-rate:10k`;
}

/** Open loop at a fixed offered rate (calls start on schedule, not when earlier ones end). */
export function atRate(ctx: ScenarioContext, target: TargetName, ratePerSecond: number): LoadNeed {
  return {
    id: atRateId(target),
    target,
    spec: {
      ...base(ctx, ctx.settings.runS),
      // The first load on a fresh process: JIT and heap sizing stall it for a second or so,
      // which an open loop would book as tail latency of the service itself.
      warmupS: Math.max(2, ctx.settings.warmupS),
      connections: SATURATE.connections,
      streamsPerConnection: 1,
      ratePerSecond,
      keySpace: TEN_K,
      decisionsPerCall: 1,
    },
  };
}

export interface Summary {
  readonly median: number;
  readonly values: readonly number[];
  /** Rounds, spread and any gRPC or transport failure, for the row's note. */
  readonly note: string;
}

/** Calls that failed in a run, by any of the three checks (server, driver, sampled client). */
export function failedCalls(m: Measurement): number {
  const sampled = Object.values(m.sampled.failed).reduce((a, b) => a + b, 0);
  return m.serverErrors + Object.values(m.clientFailures).reduce((a, b) => a + b, 0) + sampled;
}

/**
 * An open-loop driver that sent more than this share of its calls over 5 ms late was starved of
 * CPU itself: the run measured the machine, not the service. On the shared 2-core machine ~1% is
 * usual for both servers alike (the rounds alternate, so it weighs on both), hence 5%.
 */
export const MAX_LATE_SENDS = 0.05;

/** A run counts only if it served calls, at most 0.1% of them failed, and the driver kept up. */
export function validRun(m: Measurement): boolean {
  const ok = Number.isFinite(m.serverOk) ? m.serverOk : m.callsPerSecond;
  return m.serverCallsPerSecond > 0 && failedCalls(m) <= 0.001 * Math.max(ok, 1) && m.lateSendFraction <= MAX_LATE_SENDS;
}

/** Median over the valid runs of a load; undefined when none is valid. */
export function summarise(results: Results, id: string, pick: (m: Measurement) => number): Summary | undefined {
  const all = results.get(id) ?? [];
  const runs = all.filter(validRun);
  const values = runs.map(pick).filter(Number.isFinite);
  if (values.length === 0) return undefined;
  const drivers = [...new Set(runs.map((m) => m.driver))].join("+");
  const verified = [...new Set(runs.map((m) => m.verifiedBy))];
  const check = verified.length === 1 && verified[0] === "server" ? "" : `, status checked by ${verified.join("+")}`;
  const dropped = all.length - runs.length;
  const note = `${values.length} rounds, spread ${(spread(values) * 100).toFixed(0)}%, ${drivers} driver${check}${dropped > 0 ? `, ${dropped} round(s) DROPPED (failed calls or driver lag)` : ""}`;
  return { median: median(values), values, note };
}

/** Why a row could not be computed from these loads. */
export function whyMissing(results: Results, ids: readonly string[]): string {
  for (const id of ids) {
    const all = results.get(id) ?? [];
    if (all.length === 0) return `${id}: no run completed (see the log)`;
    if (!all.some(validRun)) {
      const lagged = all.filter((m) => m.lateSendFraction > MAX_LATE_SENDS).length;
      return `${id}: no valid round (failed calls per round: ${all.map(failedCalls).join(", ")}; driver late on over ${MAX_LATE_SENDS * 100}% of sends in ${lagged}): the machine, or the service itself, was behind`;
    }
  }
  return "see the log";
}

/** Median share of one core the service used over the runs: near 100% means saturated. */
export function cpuShare(results: Results, id: string): string {
  const runs = results.get(id) ?? [];
  return `${(median(runs.map((m) => m.serviceCpuShare)) * 100).toFixed(0)}% core`;
}
