// The scaling table (issue 14): the mesh as it is today (every replica dials every other, no
// relay per region) at 3, 6 and 9 replicas, in one region and in three regions of equal size
// with 40 ms one-way delay on every link between regions (the test suite's fault proxy) and none
// inside a region.
//
// Per layout, once (one run each: 9 node processes and their drivers take the whole machine):
//   idle      the fresh fleet, ready and connected, no load, IDLE_S seconds: CPU per replica
//   light     open loop, LIGHT_DECISIONS decisions/s over all replicas, 100 per call, 10k uniform
//             keys: CPU per applied remote key update, payload and cross-region bytes per
//             admitted decision, lag p50/p99, RSS growth per key held
//   hot key   a fresh fleet, one key saturated from every replica (replication-accuracy.ts):
//             admitted against the ideal C + r*T
// and, once, the hot-key load on one standalone replica to check the method.
// The rows are built in scaling-rows.ts.

import { setTimeout as sleep } from "node:timers/promises";
import type { LoadSpec } from "../lib/load.ts";
import { describeFleet, type Fleet, startFleet } from "../lib/mesh.ts";
import { failureCodes, measureFleet } from "../lib/mesh-load.ts";
import { rssBytes } from "../lib/processes.ts";
import type { Row } from "../lib/report.ts";
import type { Scenario, ScenarioContext } from "../lib/scenario.ts";
import { base, TEN_K } from "./common.ts";
import { measureAccuracy } from "./replication-accuracy.ts";
import { BATCH, LIGHT_DECISIONS } from "./replication-setup.ts";
import { scalingRows } from "./scaling-rows.ts";
import { fleetOptions, IDLE_S, LAYOUTS, type Layout, type LayoutResult, layoutName, SETTLE_S, windowSeconds } from "./scaling-setup.ts";

/** The same light load as the replication rows, spread evenly over however many replicas there are. */
function lightLoad(ctx: ScenarioContext, replicas: number): LoadSpec {
  return {
    ...base(ctx, windowSeconds(ctx)),
    warmupS: 1, // open loop: a fresh process stalls on JIT for a moment
    connections: 1,
    streamsPerConnection: 1,
    ratePerSecond: LIGHT_DECISIONS / replicas / BATCH,
    keySpace: TEN_K,
    decisionsPerCall: BATCH,
  };
}

async function idleCores(fleet: Fleet): Promise<number[]> {
  await sleep(SETTLE_S * 1000);
  const t0 = performance.now();
  const before = fleet.replicas.map((r) => r.cpuSeconds());
  await sleep(IDLE_S * 1000);
  const seconds = (performance.now() - t0) / 1000;
  return fleet.replicas.map((r, i) => (r.cpuSeconds() - (before[i] as number)) / seconds);
}

async function measureLayout(ctx: ScenarioContext, layout: Layout): Promise<LayoutResult> {
  const options = fleetOptions(layout);
  let fleet: Fleet | undefined;
  let partial: Omit<LayoutResult, "accuracy"> = { layout };
  try {
    fleet = await startFleet(ctx.tools, { ...options, cpuProfDir: ctx.settings.cpuProfDir });
    const idle = await idleCores(fleet);
    partial = { layout, idleCores: idle };
    const rss0 = fleet.replicas.map((r) => rssBytes(r.pid));
    const light = await measureFleet(ctx.tools, fleet, lightLoad(ctx, layout.replicas), { scrapeEveryMs: 250 });
    const rssGrowth = fleet.replicas.map((r, i) => rssBytes(r.pid) - (rss0[i] as number));
    partial = { layout, idleCores: idle, light, rssGrowth };
    ctx.log(
      `scaling ${layoutName(layout)}: idle ${idle.map((c) => `${(c * 100).toFixed(1)}%`).join("/")} core; light run ${light.windowS.toFixed(1)} s, ${light.failed} failed calls${light.failed > 0 ? ` (${failureCodes(light)})` : ""}, ${(light.crossRegionBytes / 1000).toFixed(0)} kB across regions`,
    );
  } catch (err) {
    const died = fleet?.died() ?? [];
    const why = `${err instanceof Error ? (err.message.split("\n")[0] ?? "") : String(err)}${died.length > 0 ? ` (replicas exited: ${died.join(", ")})` : ""}`;
    ctx.log(`scaling ${layoutName(layout)} (${describeFleet(options)}): failed: ${why}`);
    partial = { ...partial, failure: why };
  } finally {
    await fleet?.stop();
  }
  const accuracy = await measureAccuracy(ctx, options, windowSeconds(ctx));
  return { ...partial, accuracy };
}

export const scaling: Scenario = {
  id: "scaling",
  phase: 1,
  async run(ctx): Promise<readonly Row[]> {
    const results: LayoutResult[] = [];
    for (const layout of LAYOUTS) results.push(await measureLayout(ctx, layout));
    // The hot-key load on one standalone replica: an exact limiter must land on C + r*T here,
    // or the machine (a stall longer than C/r), not the mesh, set the accuracy figures.
    const control = await measureAccuracy(ctx, { replicas: 1, mesh: null }, windowSeconds(ctx));
    return scalingRows(ctx, results, control);
  },
};
