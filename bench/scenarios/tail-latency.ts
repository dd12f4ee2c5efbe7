// p99 latency at half of tokenmesh's own maximum throughput, against the floor at the same
// offered load. Target: <= 1.5x. Open loop (calls start on a fixed schedule and latency counts
// from the scheduled start), so a stall shows up in the tail instead of slowing the load.

import { ratioRow, type Row } from "../lib/report.ts";
import type { Scenario, ScenarioContext } from "../lib/scenario.ts";
import { median } from "../lib/stats.ts";
import { atRate, atRateId, saturateId, summarise } from "./common.ts";

/** Half of phase 1's median tokenmesh throughput; undefined if phase 1 did not measure it. */
function halfLoad(ctx: ScenarioContext): number | undefined {
  const runs = ctx.results.get(saturateId("tokenmesh", 1));
  if (runs === undefined || runs.length === 0) return undefined;
  return Math.round(median(runs.map((m) => m.serverCallsPerSecond)) / 2);
}

export const tailLatency: Scenario = {
  id: "tail-latency",
  phase: 2,
  loads(ctx) {
    const rate = halfLoad(ctx);
    if (rate === undefined) return [];
    return [atRate(ctx, "tokenmesh", rate), atRate(ctx, "floor", rate)];
  },
  rows(ctx: ScenarioContext): readonly Row[] {
    const rate = halfLoad(ctx);
    const tm = summarise(ctx.results, atRateId("tokenmesh"), (m) => m.latencyUs.p99);
    const floor = summarise(ctx.results, atRateId("floor"), (m) => m.latencyUs.p99);
    if (rate === undefined || tm === undefined || floor === undefined) return [];
    const achieved = summarise(ctx.results, atRateId("tokenmesh"), (m) => m.serverCallsPerSecond);
    return [
      ratioRow({
        name: "p99 latency at half max load, 10k keys",
        unit: "us",
        value: tm.median,
        baseline: floor.median,
        baselineName: "floor",
        bound: { op: "<=", bound: 1.5 },
        note: `offered ${rate} calls/s (served ${Math.round(achieved?.median ?? 0)}), 4 connections, open loop; tokenmesh ${tm.note}; floor ${floor.note}`,
      }),
    ];
  },
};
