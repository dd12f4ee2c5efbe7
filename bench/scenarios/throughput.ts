// Consume, one decision per call, 10k uniform keys, at saturation: tokenmesh's calls per second
// against the floor (grpc-js answering a constant). Target: >= 0.9x the floor.

import { ratioRow, type Row } from "../lib/report.ts";
import type { Scenario, ScenarioContext } from "../lib/scenario.ts";
import { cpuShare, saturate, saturateId, summarise } from "./common.ts";

export const throughput: Scenario = {
  id: "throughput",
  phase: 1,
  loads: (ctx) => [saturate(ctx, "tokenmesh"), saturate(ctx, "floor")],
  rows(ctx: ScenarioContext): readonly Row[] {
    const tm = summarise(ctx.results, saturateId("tokenmesh", 1), (m) => m.serverCallsPerSecond);
    const floor = summarise(ctx.results, saturateId("floor", 1), (m) => m.serverCallsPerSecond);
    if (tm === undefined || floor === undefined) return [];
    const tmCpu = summarise(ctx.results, saturateId("tokenmesh", 1), (m) => m.cpuUsPerCall);
    const floorCpu = summarise(ctx.results, saturateId("floor", 1), (m) => m.cpuUsPerCall);
    const rows: Row[] = [
      ratioRow({
        name: "consume 1/call, 10k keys: throughput",
        unit: "calls/s",
        value: tm.median,
        baseline: floor.median,
        baselineName: "floor",
        bound: { op: ">=", bound: 0.9 },
        note: `tokenmesh ${tm.note} (${cpuShare(ctx.results, saturateId("tokenmesh", 1))}); floor ${floor.note} (${cpuShare(ctx.results, saturateId("floor", 1))}); 4 connections x 32 streams`,
      }),
    ];
    if (tmCpu !== undefined && floorCpu !== undefined) {
      rows.push({
        ...ratioRow({
          name: "consume 1/call, 10k keys: CPU per call",
          unit: "us",
          value: tmCpu.median,
          baseline: floorCpu.median,
          baselineName: "floor",
          bound: { op: "<=", bound: 1 },
          note: `service process CPU (user+system) over the measured window / OK calls; tokenmesh ${tmCpu.note}`,
        }),
        target: null,
        pass: null,
      });
    }
    return rows;
  },
};
