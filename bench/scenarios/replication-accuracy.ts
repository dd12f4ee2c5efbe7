// Accuracy under load: one hot key of the `hot` policy (capacity C = 100, refill r = 1,000/s),
// never used before, saturated from all three replicas of a fresh mesh for T seconds. A single
// exact limiter would admit C + r*T over that span; the mesh admits what each replica allows
// on its view, which runs up to a replication lag behind the others'. The row compares the
// tokens admitted by all replicas (their own `tokenmesh_decisions_total{result="allowed"}`)
// with C + r*T, T being measured from the first driver's first send to the last driver's end.

import type { LoadSpec } from "../lib/load.ts";
import { type FleetOptions, HOT_POLICY, startFleet } from "../lib/mesh.ts";
import { type FleetMeasurement, measureFleet, validFleetRun } from "../lib/mesh-load.ts";
import type { ScenarioContext } from "../lib/scenario.ts";
import { BENCH_POLICY } from "../lib/targets.ts";
import { base, ONE_KEY } from "./common.ts";
import { FLEETS } from "./replication-setup.ts";

export interface Accuracy {
  /** Seconds asked for; the span actually loaded is `spanS`. */
  readonly seconds: number;
  readonly admitted: number;
  readonly denied: number;
  readonly ideal: number;
  readonly spanS: number;
  readonly perReplica: readonly number[];
  readonly valid: boolean;
  /** Worst client-side latency of a call, ms: a stall of every replica over C/r loses refill. */
  readonly worstCallMs: number;
  readonly measurement: FleetMeasurement;
}

export const accuracySeconds = (ctx: ScenarioContext): number => (ctx.settings.quick ? 6 : 30);

/**
 * The hot-key run on `fleet` (the 3-replica mesh by default). With one standalone replica it
 * checks the method itself: an exact limiter must land on C + r*T.
 */
export async function measureAccuracy(
  ctx: ScenarioContext,
  fleetOptions: FleetOptions = FLEETS.mesh,
  seconds = accuracySeconds(ctx),
): Promise<Accuracy | string> {
  const spec: LoadSpec = {
    ...base(ctx, seconds),
    warmupS: 0, // the bucket starts full on the first call: every call counts
    connections: 2,
    streamsPerConnection: 16,
    ratePerSecond: null,
    keySpace: ONE_KEY,
    decisionsPerCall: 1,
    policy: HOT_POLICY.name,
  };
  let fleet: Awaited<ReturnType<typeof startFleet>> | undefined;
  try {
    fleet = await startFleet(ctx.tools, { ...fleetOptions, cpuProfDir: ctx.settings.cpuProfDir });
    // The sampling client calls the bench policy, so the hot policy's counts are the load's alone.
    const m = await measureFleet(ctx.tools, fleet, spec, { samplerPolicy: BENCH_POLICY.name });
    const perReplica = m.whole.map((s) => s.decisions.get(`${HOT_POLICY.name}/allowed`) ?? 0);
    const admitted = perReplica.reduce((a, b) => a + b, 0);
    const denied = m.whole.reduce((s, w) => s + (w.decisions.get(`${HOT_POLICY.name}/denied`) ?? 0), 0);
    const ideal = HOT_POLICY.capacity + HOT_POLICY.refillPerSecond * m.loadSpanS;
    const worstCallMs = Math.max(...m.drivers.map((d) => d.latencyUs.max)) / 1000;
    ctx.log(
      `replication accuracy (${fleet.replicas.length} replica(s)): worst call ${worstCallMs.toFixed(0)} ms, admitted ${admitted} (${perReplica.join(" + ")}) of ${admitted + denied} decisions, ideal ${ideal.toFixed(0)} over ${m.loadSpanS.toFixed(3)} s${m.failed > 0 ? `, ${m.failed} FAILED calls` : ""}`,
    );
    return { seconds, admitted, denied, ideal, spanS: m.loadSpanS, perReplica, valid: validFleetRun(m), worstCallMs, measurement: m };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    ctx.log(`replication accuracy: failed: ${why}`);
    return `the run failed (${why.split("\n")[0]})`;
  } finally {
    await fleet?.stop();
  }
}
