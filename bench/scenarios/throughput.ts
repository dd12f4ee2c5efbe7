// Consume, one decision per call, 10k uniform keys: tokenmesh against the floor (grpc-js
// answering a constant). Target: throughput >= 0.9x the floor's.
//
// The Node driver, the only one that can spread calls over 10k keys, costs about as much CPU per
// call as the floor, so it cannot push either server to a full core. The target row therefore
// compares calls per CPU-second of the service (what one core would serve), measured
// server-side under the same load; the hot-key row below is the same comparison in raw calls/s
// with h2load, which does saturate both, as a check on that method.
//
// What bounds a miss is measured in the same rounds: "floor-nice" is the floor's constant answer
// served through nice-grpc, the design card's server stack, with no handler work. A miss whose
// floor-nice is itself under 0.9x the floor is bounded by nice-grpc's per-call cost.

import { floorBound, withBound } from "../lib/bounds.ts";
import { notMeasured, type Row, ratioRow } from "../lib/report.ts";
import type { Scenario, ScenarioContext } from "../lib/scenario.ts";
import { cpuShare, hotId, saturate, saturateHot, saturateId, summarise, whyMissing } from "./common.ts";

export const perCore = (m: { cpuUsPerCall: number }): number => 1e6 / m.cpuUsPerCall;

export const throughput: Scenario = {
  id: "throughput",
  phase: 1,
  loads: (ctx) => [
    saturate(ctx, "tokenmesh"),
    saturateHot(ctx, "tokenmesh"),
    saturate(ctx, "floor"),
    saturateHot(ctx, "floor"),
    saturate(ctx, "floor-nice"),
  ],
  rows(ctx: ScenarioContext): readonly Row[] {
    const rows: Row[] = [];
    const tmId = saturateId("tokenmesh", 1);
    const flId = saturateId("floor", 1);
    const tm = summarise(ctx.results, tmId, perCore);
    const floor = summarise(ctx.results, flId, perCore);
    const tmServed = summarise(ctx.results, tmId, (m) => m.serverCallsPerSecond);
    const flServed = summarise(ctx.results, flId, (m) => m.serverCallsPerSecond);
    const niceId = saturateId("floor-nice", 1);
    const nice = summarise(ctx.results, niceId, perCore);
    if (tm === undefined || floor === undefined || tmServed === undefined || flServed === undefined) {
      rows.push(
        notMeasured(
          "consume 1/call, 10k keys: throughput per service core",
          "calls/CPU-s",
          ">= 0.9x floor",
          whyMissing(ctx.results, [tmId, flId]),
        ),
      );
    } else {
      const row = ratioRow({
        name: "consume 1/call, 10k keys: throughput per service core",
        unit: "calls/CPU-s",
        value: tm.median,
        baseline: floor.median,
        baselineName: "floor",
        bound: { op: ">=", bound: 0.9 },
        rounds: Math.min(tm.values.length, floor.values.length),
        note: `1e6 / service CPU-us per OK call, 4 connections x 32 streams; served ${Math.round(tmServed.median)} calls/s at ${cpuShare(ctx.results, tmId)} (floor ${Math.round(flServed.median)} at ${cpuShare(ctx.results, flId)}); tokenmesh ${tm.note}; floor ${floor.note}`,
      });
      const bound =
        nice === undefined
          ? `floor-nice (the floor through nice-grpc) not measured: ${whyMissing(ctx.results, [niceId])}`
          : floorBound({
              floorName: "floor-nice (the floor's constant answer through nice-grpc, the design card's stack)",
              floorShort: "floor-nice",
              floorRatio: nice.median / floor.median,
              mineOverFloor: tm.median / nice.median,
              bound: 0.9,
              higherIsBetter: true,
              detail: `floor-nice ${Math.round(nice.median)} calls/CPU-s, ${nice.note}`,
            });
      rows.push(withBound(row, bound));
    }
    const hot = summarise(ctx.results, hotId("tokenmesh"), (m) => m.serverCallsPerSecond);
    const hotFloor = summarise(ctx.results, hotId("floor"), (m) => m.serverCallsPerSecond);
    if (hot !== undefined && hotFloor !== undefined) {
      const hotRow = ratioRow({
        name: "consume 1/call, 1 hot key: throughput",
        unit: "calls/s",
        value: hot.median,
        baseline: hotFloor.median,
        baselineName: "floor",
        bound: { op: ">=", bound: 0.9 },
        note: `raw calls/s, server-counted OK; tokenmesh ${hot.note} (${cpuShare(ctx.results, hotId("tokenmesh"))}); floor ${hotFloor.note} (${cpuShare(ctx.results, hotId("floor"))}); the hot key is mostly denied (1,000/s policy)`,
      });
      rows.push({ ...hotRow, target: null, pass: null });
    }
    return rows;
  },
};
