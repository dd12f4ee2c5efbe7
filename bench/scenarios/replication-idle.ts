// The idle row: CPU of a mesh replica with no traffic at all. Per round, a fresh 3-replica mesh
// (the replication rows' settings: flush 5 ms, relay on, snapshots on) is started, left alone
// for a warm-up, and each replica's user + system CPU time is read from /proc over a fixed
// window; then, in the same round, one standalone replica (no `mesh:` section) the same way:
// the baseline, what a replica costs idle without replication. Target: at most 1% of a core
// per mesh replica (issue 14), judged on the busiest replica of each round, median over rounds.

import { setTimeout as sleep } from "node:timers/promises";
import { describeFleet, type FleetOptions, startFleet } from "../lib/mesh.ts";
import { parseScrape, sum } from "../lib/mesh-metrics.ts";
import { MIN_ROUNDS, notMeasured, type Row } from "../lib/report.ts";
import type { ScenarioContext } from "../lib/scenario.ts";
import { median, spread } from "../lib/stats.ts";
import { FLEETS, REPLICAS } from "./replication-setup.ts";

const WARMUP_S = 5;
const WINDOW_S = 10;
/** Of a core, per replica. */
const IDLE_BOUND_PERCENT = 1;
const STANDALONE: FleetOptions = { replicas: 1, mesh: null };

export interface IdleRound {
  /** CPU % of a core of each replica of the mesh over the window. */
  readonly mesh: readonly number[];
  /** Deltas each mesh replica sent per second over the window (all its links). */
  readonly deltasPerS: readonly number[];
  /** CPU % of the idle standalone replica over the same length of window. */
  readonly standalone: number;
}

const deltasSent = async (url: string): Promise<number> => sum(parseScrape(await (await fetch(url)).text()).deltasSent);

/**
 * CPU % of a core of each replica of a fresh, untouched fleet over the window, and the deltas
 * each sent per second (scraped just outside the window, so the scrapes' own CPU is not in it).
 */
async function idleCpu(ctx: ScenarioContext, options: FleetOptions): Promise<{ cpu: number[]; deltasPerS: number[] }> {
  const fleet = await startFleet(ctx.tools, options);
  try {
    await sleep(WARMUP_S * 1000);
    const sent0 = await Promise.all(fleet.replicas.map((r) => deltasSent(r.metricsUrl)));
    const before = fleet.replicas.map((r) => r.cpuSeconds());
    const t0 = performance.now();
    await sleep(WINDOW_S * 1000);
    const after = fleet.replicas.map((r) => r.cpuSeconds());
    const windowS = (performance.now() - t0) / 1000;
    const sent1 = await Promise.all(fleet.replicas.map((r) => deltasSent(r.metricsUrl)));
    const died = fleet.died();
    if (died.length > 0) throw new Error(`replicas exited during the idle window: ${died.join(", ")}`);
    return {
      cpu: after.map((cpu, i) => ((cpu - (before[i] as number)) / windowS) * 100),
      deltasPerS: sent1.map((x, i) => (x - (sent0[i] as number)) / windowS),
    };
  } finally {
    await fleet.stop();
  }
}

export async function measureIdle(ctx: ScenarioContext): Promise<IdleRound[]> {
  const rounds: IdleRound[] = [];
  for (let round = 1; round <= ctx.settings.rounds; round++) {
    try {
      const { cpu: mesh, deltasPerS } = await idleCpu(ctx, FLEETS.mesh);
      const [standalone] = (await idleCpu(ctx, STANDALONE)).cpu;
      rounds.push({ mesh, deltasPerS, standalone: standalone as number });
      ctx.log(
        `round ${round} replication idle: mesh replicas ${mesh.map((x) => `${x.toFixed(2)}%`).join(" ")}, standalone ${(standalone as number).toFixed(2)}% of a core`,
      );
    } catch (err) {
      ctx.log(`round ${round} replication idle: failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return rounds;
}

export function idleRows(rounds: readonly IdleRound[]): Row[] {
  const name = `replication: idle CPU per replica, ${REPLICAS}-replica mesh, no traffic`;
  const target = `<= ${IDLE_BOUND_PERCENT} % of a core`;
  if (rounds.length === 0) return [notMeasured(name, "% of a core", target, "no idle round completed (see the log)")];
  const busiest = rounds.map((r) => Math.max(...r.mesh));
  const baseline = rounds.map((r) => r.standalone);
  const value = median(busiest);
  const base = median(baseline);
  const tooFew = rounds.length < MIN_ROUNDS;
  const each = rounds.map((r) => r.mesh.map((x) => x.toFixed(2)).join("/")).join(", ");
  const pass = tooFew ? null : value <= IDLE_BOUND_PERCENT;
  const sent = median(rounds.flatMap((r) => r.deltasPerS));
  // What the time goes to, from the same rounds: the idle standalone replica (timers, metrics,
  // snapshots of nothing) and, on top, replication: heartbeats, their relays and the acks.
  const bound =
    pass === false
      ? `MISS by ${(value - IDLE_BOUND_PERCENT).toFixed(2)} points: ${base.toFixed(2)}% is what an idle standalone replica costs too (its timers: event-loop watch and delay sampler at 100 ms), the other ${(value - base).toFixed(2)}% is replication: each mesh replica sent ${sent.toFixed(1)} deltas/s (its own heartbeat to 2 peers at the backed-off 1/s, relayed heartbeats of the third replica, resends) and received as many, each with its ack (docs/performance.md, "Idle cost", has the profile); `
      : "";
  return [
    {
      name,
      value,
      unit: "% of a core",
      baseline: base,
      baselineName: "idle standalone replica",
      ratio: base > 0 ? value / base : null,
      target,
      pass,
      note: `${tooFew ? `NO VERDICT: only ${rounds.length} valid round(s); ` : ""}${bound}user + system CPU (/proc/PID/stat) of each replica over ${WINDOW_S} s, taken ${WARMUP_S} s after the mesh was ready (${describeFleet(FLEETS.mesh)}, snapshots on), no call at all; value = the busiest replica of a round, median over rounds; per round ${each}; baseline: one standalone replica (${describeFleet(STANDALONE)}) measured the same way in the same round, the ratio is what being a mesh replica adds idle; ${rounds.length} rounds, spread ${(spread(busiest) * 100).toFixed(0)}% (baseline ${(spread(baseline) * 100).toFixed(0)}%); deltas sent per mesh replica ${sent.toFixed(1)}/s (median)`,
    },
  ];
}
