// Runs the merged loads of a phase in alternating rounds: per round, each target is started
// fresh, runs its loads in a fixed order, and is stopped before the next target starts, so
// no two services ever compete for the service core.

import { type Measurement, measure } from "./load.ts";
import type { LoadNeed } from "./scenario.ts";
import { startTarget, type TargetName } from "./targets.ts";
import type { Tools } from "./tools.ts";

export interface RoundOptions {
  readonly rounds: number;
  readonly cpuProfDir: string | undefined;
  log(message: string): void;
}

function describe(m: Measurement): string {
  const failures = [
    ...Object.entries(m.clientFailures),
    ...Object.entries(m.sampled.failed).map(([k, v]) => [`sampled-${k}`, v] as const),
  ].map(([k, v]) => `${k}:${v}`);
  return [
    `${Math.round(m.serverCallsPerSecond)} calls/s`,
    `p50 ${Math.round(m.latencyUs.p50)}us p99 ${Math.round(m.latencyUs.p99)}us`,
    `cpu ${m.cpuUsPerCall.toFixed(1)}us/call at ${(m.serviceCpuShare * 100).toFixed(0)}% of a core`,
    `${m.driver}, ${m.sampled.ok} sampled OK`,
    failures.length > 0 || m.serverErrors > 0 ? `FAILURES client ${failures.join(",") || "0"} server ${m.serverErrors}` : "",
  ]
    .filter((s) => s !== "")
    .join(", ");
}

export async function runRounds(tools: Tools, needs: readonly LoadNeed[], options: RoundOptions): Promise<Map<string, Measurement[]>> {
  const unique = new Map<string, LoadNeed>();
  for (const n of needs) if (!unique.has(n.id)) unique.set(n.id, n);
  const byTarget = new Map<TargetName, LoadNeed[]>();
  for (const n of unique.values()) byTarget.set(n.target, [...(byTarget.get(n.target) ?? []), n]);
  const results = new Map<string, Measurement[]>();
  for (let round = 1; round <= options.rounds; round++) {
    for (const [name, loads] of byTarget) {
      // Only tokenmesh is profiled: the baselines are not ours to optimise.
      const cpuProfDir = name === "tokenmesh" ? options.cpuProfDir : undefined;
      let target: Awaited<ReturnType<typeof startTarget>> | undefined;
      try {
        target = await startTarget(name, tools, { cpuProfDir });
        for (const need of loads) {
          const m = await measure(tools, target, need.spec);
          results.set(need.id, [...(results.get(need.id) ?? []), m]);
          options.log(`round ${round} ${need.id}: ${describe(m)}`);
        }
      } catch (err) {
        options.log(`round ${round} ${name}: failed: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        await target?.stop();
      }
    }
  }
  return results;
}
