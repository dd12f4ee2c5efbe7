// Consume with 100 decisions per call: decisions per second against tokenmesh's own one-decision
// figure from the same rounds. Target: >= 30x. A batch pays grpc-js's per-call cost once, so
// what remains is tokenmesh's cost per decision (decoding, validation, bucket math, encoding).
// Both sides are decisions per CPU-second of the service, like the throughput row: the Node
// driver cannot saturate the one-decision case, and a driver-bound denominator would flatter.

import { notMeasured, type Row, ratioRow } from "../lib/report.ts";
import type { Scenario, ScenarioContext } from "../lib/scenario.ts";
import { cpuShare, saturate, saturateId, summarise, whyMissing } from "./common.ts";

export const BATCH = 100;

export const batch: Scenario = {
  id: "batch",
  phase: 1,
  loads: (ctx) => [saturate(ctx, "tokenmesh"), saturate(ctx, "tokenmesh", BATCH)],
  rows(ctx: ScenarioContext): readonly Row[] {
    const one = summarise(ctx.results, saturateId("tokenmesh", 1), (m) => 1e6 / m.cpuUsPerCall);
    const many = summarise(ctx.results, saturateId("tokenmesh", BATCH), (m) => (1e6 * BATCH) / m.cpuUsPerCall);
    const served = summarise(ctx.results, saturateId("tokenmesh", BATCH), (m) => m.serverCallsPerSecond * BATCH);
    const name = `consume ${BATCH}/call, 10k keys: decisions per service core`;
    if (one === undefined || many === undefined) {
      return [
        notMeasured(
          name,
          "decisions/CPU-s",
          ">= 30x tokenmesh 1/call",
          whyMissing(ctx.results, [saturateId("tokenmesh", 1), saturateId("tokenmesh", BATCH)]),
        ),
      ];
    }
    const cpu = summarise(ctx.results, saturateId("tokenmesh", BATCH), (m) => m.cpuUsPerCall / BATCH);
    return [
      ratioRow({
        name,
        unit: "decisions/CPU-s",
        value: many.median,
        baseline: one.median,
        baselineName: "tokenmesh 1/call",
        bound: { op: ">=", bound: 30 },
        rounds: Math.min(one.values.length, many.values.length),
        note: `1e6 x ${BATCH} / service CPU-us per call; ${cpu === undefined ? "" : `${cpu.median.toFixed(2)} us CPU per decision, `}served ${Math.round(served?.median ?? 0)} decisions/s at ${cpuShare(ctx.results, saturateId("tokenmesh", BATCH))}; ${many.note}; 4 connections x 8 streams`,
      }),
    ];
  },
};
