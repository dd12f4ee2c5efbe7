// Against what many teams run today: a token-bucket Lua script in redis-server behind a grpc-js
// service. Two targets: p50 latency at low load (one connection, one call in flight) <= 0.75x
// redis's, and CPU per decision at saturation (all processes of each service: for redis, the
// Node service plus redis-server) <= 0.6x redis's.

import { notMeasured, type Row, ratioRow } from "../lib/report.ts";
import type { Scenario, ScenarioContext } from "../lib/scenario.ts";
import { cpuShare, lowLoad, lowLoadId, saturate, saturateId, summarise, whyMissing } from "./common.ts";

const LATENCY = "p50 latency, 1 call in flight, 10k keys";
const CPU = "CPU per decision at saturation, 10k keys";

export const versusRedis: Scenario = {
  id: "versus-redis",
  phase: 1,
  loads(ctx) {
    const both = [lowLoad(ctx, "tokenmesh"), saturate(ctx, "tokenmesh")];
    if (ctx.tools.redisServer === null) return both;
    return [...both, saturate(ctx, "redis"), lowLoad(ctx, "redis")];
  },
  rows(ctx: ScenarioContext): readonly Row[] {
    if (ctx.tools.redisServer === null) {
      return [
        notMeasured(LATENCY, "us", "<= 0.75x redis", "redis-server is not installed"),
        notMeasured(CPU, "us", "<= 0.6x redis", "redis-server is not installed"),
      ];
    }
    const rows: Row[] = [];
    const tmLat = summarise(ctx.results, lowLoadId("tokenmesh"), (m) => m.latencyUs.p50);
    const redisLat = summarise(ctx.results, lowLoadId("redis"), (m) => m.latencyUs.p50);
    if (tmLat !== undefined && redisLat !== undefined) {
      rows.push(
        ratioRow({
          name: LATENCY,
          unit: "us",
          value: tmLat.median,
          baseline: redisLat.median,
          baselineName: "redis",
          bound: { op: "<=", bound: 0.75 },
          rounds: Math.min(tmLat.values.length, redisLat.values.length),
          note: `client-side, Node http2 driver (its own ~tens of us are in both); tokenmesh ${tmLat.note}; redis ${redisLat.note}`,
        }),
      );
    } else rows.push(notMeasured(LATENCY, "us", "<= 0.75x redis", whyMissing(ctx.results, [lowLoadId("tokenmesh"), lowLoadId("redis")])));
    const tmCpu = summarise(ctx.results, saturateId("tokenmesh", 1), (m) => m.cpuUsPerCall);
    const redisCpu = summarise(ctx.results, saturateId("redis", 1), (m) => m.cpuUsPerCall);
    if (tmCpu !== undefined && redisCpu !== undefined) {
      rows.push(
        ratioRow({
          name: CPU,
          unit: "us",
          value: tmCpu.median,
          baseline: redisCpu.median,
          baselineName: "redis",
          bound: { op: "<=", bound: 0.6 },
          rounds: Math.min(tmCpu.values.length, redisCpu.values.length),
          note: `user+system CPU over the measured window / OK calls (one decision each); redis = its Node service + redis-server on the same core; tokenmesh ${tmCpu.note} (${cpuShare(ctx.results, saturateId("tokenmesh", 1))}); redis ${redisCpu.note} (${cpuShare(ctx.results, saturateId("redis", 1))})`,
        }),
      );
    } else
      rows.push(notMeasured(CPU, "us", "<= 0.6x redis", whyMissing(ctx.results, [saturateId("tokenmesh", 1), saturateId("redis", 1)])));
    return rows;
  },
};
