// What the replication scenario runs: the fleets it compares and the loads it puts on them.

import type { KeySpace } from "../lib/keys.ts";
import type { LoadSpec } from "../lib/load.ts";
import type { FleetOptions } from "../lib/mesh.ts";
import type { FleetMeasurement } from "../lib/mesh-load.ts";
import type { ScenarioContext } from "../lib/scenario.ts";
import { BENCH_POLICY } from "../lib/targets.ts";
import { base, TEN_K } from "./common.ts";

/** mesh: 3 replicas, relay on; solo: no mesh section; no-relay; alone: mesh section, no peers. */
export type FleetName = "mesh" | "solo" | "no-relay" | "alone";

export const REPLICAS = 3;
export const BATCH = 100;
export const FLUSH_MS = 5;
/** Per replica, like the single-replica batch row: big batches need few streams in flight. */
const SHAPE = { connections: 4, streamsPerConnection: 8 } as const;
/**
 * The lag row's moderate load: this share of what the same mesh served saturated in the same
 * round, so it stays "moderate" whatever the mesh's capacity is on the day.
 */
export const MODERATE_SHARE = 0.25;
/** A light load (full run only), decisions per second over all replicas. */
export const LIGHT_DECISIONS = 1500;

const mesh = { relay: true, flushIntervalMs: FLUSH_MS } as const;

export const FLEETS: Readonly<Record<FleetName, FleetOptions>> = {
  mesh: { replicas: REPLICAS, mesh },
  solo: { replicas: REPLICAS, mesh: null },
  "no-relay": { replicas: REPLICAS, mesh: { ...mesh, relay: false } },
  alone: { replicas: REPLICAS, mesh: { ...mesh, alone: true } },
};

export function saturating(ctx: ScenarioContext): LoadSpec {
  return { ...base(ctx, ctx.settings.runS), ...SHAPE, ratePerSecond: null, keySpace: TEN_K, decisionsPerCall: BATCH };
}

/** The skewed throughput row's keys (issue 14): Zipf with s = 1.1 over 1M keys. */
export const ZIPF_1M: KeySpace = { size: 1_000_000, distribution: "zipf", zipfS: 1.1 };

/** The saturating load over ZIPF_1M instead of 10k uniform keys. */
export function saturatingZipf(ctx: ScenarioContext): LoadSpec {
  return { ...saturating(ctx), keySpace: ZIPF_1M };
}

/**
 * Open loop at `decisionsPerSecond` per replica, in calls of BATCH decisions like the saturating
 * run: a quarter of the decisions is then a quarter of the calls too (with small calls, a quarter
 * of the decisions was more calls than the saturated run made, and the lag measured the
 * replicas' overload, not replication).
 */
export function moderate(ctx: ScenarioContext, decisionsPerSecond: number): LoadSpec {
  const decisionsPerCall = BATCH;
  return {
    ...base(ctx, ctx.settings.runS),
    // Open loop, like the tail-latency row: a fresh process stalls on JIT for a moment.
    warmupS: Math.max(1, ctx.settings.warmupS),
    connections: SHAPE.connections,
    streamsPerConnection: 1,
    ratePerSecond: Math.max(1, decisionsPerSecond / decisionsPerCall),
    keySpace: TEN_K,
    decisionsPerCall,
  };
}

const counted = (m: FleetMeasurement, result: "allowed" | "denied"): number =>
  m.replicas.reduce((s, r) => s + (r.scrape.decisions.get(`${BENCH_POLICY.name}/${result}`) ?? 0), 0);

/** Decisions of the bench policy all replicas made over the window (their own counts). */
export const decisions = (m: FleetMeasurement): number => counted(m, "allowed") + counted(m, "denied");
export const admitted = (m: FleetMeasurement): number => counted(m, "allowed");
