// Consume with 100 decisions per call: decisions per second against tokenmesh's own one-decision
// figure from the same rounds. Target: >= 30x. A batch pays grpc-js's per-call cost once, so
// what remains is tokenmesh's cost per decision (validation, bucket math, encoding).

import { notMeasured, ratioRow, type Row } from "../lib/report.ts";
import type { Scenario, ScenarioContext } from "../lib/scenario.ts";
import { saturate, saturateId, summarise, whyMissing } from "./common.ts";

export const BATCH = 100;

export const batch: Scenario = {
  id: "batch",
  phase: 1,
  loads: (ctx) => [saturate(ctx, "tokenmesh"), saturate(ctx, "tokenmesh", BATCH)],
  rows(ctx: ScenarioContext): readonly Row[] {
    const one = summarise(ctx.results, saturateId("tokenmesh", 1), (m) => m.serverCallsPerSecond);
    const many = summarise(ctx.results, saturateId("tokenmesh", BATCH), (m) => m.serverCallsPerSecond * BATCH);
    const name = `consume ${BATCH}/call, 10k keys: decisions/s`;
    if (one === undefined || many === undefined) {
      return [notMeasured(name, "decisions/s", ">= 30x tokenmesh 1/call", whyMissing(ctx.results, [saturateId("tokenmesh", 1), saturateId("tokenmesh", BATCH)]))];
    }
    const cpu = summarise(ctx.results, saturateId("tokenmesh", BATCH), (m) => m.cpuUsPerCall / BATCH);
    return [
      ratioRow({
        name,
        unit: "decisions/s",
        value: many.median,
        baseline: one.median,
        baselineName: "tokenmesh 1/call",
        bound: { op: ">=", bound: 30 },
        note: `${many.note}; 4 connections x 8 streams; ${cpu === undefined ? "" : `${cpu.median.toFixed(2)} us CPU per decision`}`,
      }),
    ];
  },
};
