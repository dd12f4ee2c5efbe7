// The replicated figures: a 3-replica mesh on loopback, load on all three replicas at once.
//
// Per round, each run on a fleet started fresh and stopped before the next starts (all replicas
// of a fleet share the service core, the three drivers share the load core):
//   mesh:saturate   3 replicas, relay on (the default): saturating 100-decision batches over
//                   10k keys (throughput, bytes, lag at saturation)
//   mesh:moderate   a fresh mesh, open loop at a quarter of what mesh:saturate served (lag)
//   mesh:light      a fresh mesh at 1,500 decisions/s in all (full run only; lag)
//   solo:saturate   3 replicas without a `mesh:` section, same load: the baseline
//   no-relay:saturate  relay off, same load (bytes without forwarding)
//   alone:saturate  3 replicas with a mesh section and no peers (full run only): the replicated
//                   store without replication, to split the mesh's cost between store and peers
//   mesh:zipf, solo:zipf  the saturating load over Zipf (s = 1.1) keys from 1M, mesh and baseline
// and, right after solo:saturate, the per-update micro-benchmark (replication-update-cost.ts),
// whose baseline is that run's CPU per decision;
// then once, on a fresh mesh, the accuracy run on one hot key (replication-accuracy.ts), and
// per round the idle row: a fresh mesh and a standalone replica left untouched (replication-idle.ts).

import type { LoadSpec } from "../lib/load.ts";
import { describeFleet, startFleet } from "../lib/mesh.ts";
import { type FleetMeasurement, measureFleet, validFleetRun } from "../lib/mesh-load.ts";
import type { Row } from "../lib/report.ts";
import type { Scenario, ScenarioContext } from "../lib/scenario.ts";
import { MAX_LATE_SENDS } from "./common.ts";
import { measureAccuracy } from "./replication-accuracy.ts";
import { idleRows, measureIdle } from "./replication-idle.ts";
import { replicationRows } from "./replication-rows.ts";
import {
  decisions,
  FLEETS,
  type FleetName,
  LIGHT_DECISIONS,
  MODERATE_SHARE,
  moderate,
  REPLICAS,
  saturating,
  saturatingZipf,
} from "./replication-setup.ts";
import { measureUpdateCost, type UpdateCostRound, updateCostRows } from "./replication-update-cost.ts";

/** Results by fleet and load, one entry per round that completed. */
export type ReplicationResults = Map<string, FleetMeasurement[]>;

export type LoadName = "saturate" | "moderate" | "light" | "zipf";

export const resultId = (fleet: FleetName, load: LoadName): string => `${fleet}:${load}`;

function describe(m: FleetMeasurement): string {
  const made = decisions(m);
  const cpu = m.replicas.reduce((s, r) => s + r.cpuS, 0);
  const bytes = m.replicas.reduce((s, r) => s + [...r.scrape.bytesSent.values()].reduce((a, b) => a + b, 0), 0);
  return `${Math.round(made / m.windowS)} decisions/s, ${Math.round(made / cpu)} per CPU-s (${((cpu / m.windowS) * 100).toFixed(0)}% core), ${Math.round(bytes / m.windowS / 1000)} kB/s replicated${m.failed > 0 ? `, ${m.failed} FAILED calls` : ""}${m.shed > 0 ? `, ${m.shed} shed (${((100 * m.shed) / Math.max(1, m.answered)).toFixed(1)}% of calls)` : ""}`;
}

/** CPU-us per decision of a run (all its replicas). */
const perCpuUs = (m: FleetMeasurement): number => (m.replicas.reduce((s, r) => s + r.cpuS, 0) / decisions(m)) * 1e6;

/** One fresh fleet, one load; the measurement is kept under `fleet:load`. */
async function oneRun(
  ctx: ScenarioContext,
  round: number,
  name: FleetName,
  load: LoadName,
  spec: LoadSpec,
  results: ReplicationResults,
): Promise<FleetMeasurement | undefined> {
  let fleet: Awaited<ReturnType<typeof startFleet>> | undefined;
  try {
    fleet = await startFleet(ctx.tools, { ...FLEETS[name], cpuProfDir: ctx.settings.cpuProfDir });
    // Saturating runs are scraped only at the window's ends (a scrape costs the replicas CPU);
    // lag needs scrapes often enough that no replica reaches its 100k-sample cap.
    const m = await measureFleet(ctx.tools, fleet, spec, load === "saturate" ? {} : { scrapeEveryMs: 250 });
    const id = resultId(name, load);
    results.set(id, [...(results.get(id) ?? []), m]);
    ctx.log(`round ${round} replication ${id}: ${describe(m)}`);
    return m;
  } catch (err) {
    const died = fleet?.died() ?? [];
    ctx.log(
      `round ${round} replication ${name}:${load} (${describeFleet(FLEETS[name])}): failed${died.length > 0 ? ` (replicas exited during the run: ${died.join(", ")})` : ""}: ${err instanceof Error ? err.message : String(err)}`,
    );
    return undefined;
  } finally {
    await fleet?.stop();
  }
}

export const replication: Scenario = {
  id: "replication",
  phase: 1,
  async run(ctx): Promise<readonly Row[]> {
    const results: ReplicationResults = new Map();
    const full = !ctx.settings.quick;
    const updateCost: (UpdateCostRound | undefined)[] = [];
    const decisionUs: (number | undefined)[] = [];
    for (let round = 1; round <= ctx.settings.rounds; round++) {
      const saturated = await oneRun(ctx, round, "mesh", "saturate", saturating(ctx), results);
      // A fresh mesh for the lag runs: a saturated one is still draining its backlog.
      if (saturated !== undefined) {
        const perReplica = (MODERATE_SHARE * decisions(saturated)) / saturated.windowS / REPLICAS;
        await oneRun(ctx, round, "mesh", "moderate", moderate(ctx, perReplica), results);
      }
      if (full) await oneRun(ctx, round, "mesh", "light", moderate(ctx, LIGHT_DECISIONS / REPLICAS), results);
      const solo = await oneRun(ctx, round, "solo", "saturate", saturating(ctx), results);
      // The per-update row's baseline is this round's CPU per standalone decision.
      decisionUs.push(solo !== undefined && validFleetRun(solo, MAX_LATE_SENDS) ? perCpuUs(solo) : undefined);
      updateCost.push(await measureUpdateCost(ctx, round));
      await oneRun(ctx, round, "no-relay", "saturate", saturating(ctx), results);
      // Mesh replicas without peers only explain the throughput row: full run only.
      if (full) await oneRun(ctx, round, "alone", "saturate", saturating(ctx), results);
      await oneRun(ctx, round, "mesh", "zipf", saturatingZipf(ctx), results);
      await oneRun(ctx, round, "solo", "zipf", saturatingZipf(ctx), results);
    }
    // The same hot-key load on one standalone replica first: it checks the counting, T and the
    // machine (a stall of the service longer than C/r loses refill), not the mesh.
    const control = await measureAccuracy(ctx, { replicas: 1, mesh: null }, ctx.settings.quick ? 3 : 10);
    const accuracy = await measureAccuracy(ctx);
    // Last, on fresh fleets: CPU with no traffic at all (issue 14).
    const idle = await measureIdle(ctx);
    return [...replicationRows(ctx, results, accuracy, control, updateCost), ...updateCostRows(updateCost, decisionUs), ...idleRows(idle)];
  },
};
