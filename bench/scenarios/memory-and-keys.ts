// One fresh tokenmesh per round: fill it with 1,000,000 keys and read the RSS growth per key
// (target <= 300 bytes), then sweep key spaces on the same process, from one hot key to a
// million cold ones, uniform and Zipf-skewed. The sweep's rows are calls per CPU-second of the
// service (like the throughput row) as ratios to the 10k-uniform run of the same sweep
// (informational: no target).

import { setTimeout as sleep } from "node:timers/promises";
import { describeKeySpace, type KeySpace } from "../lib/keys.ts";
import { type LoadSpec, type Measurement, measure } from "../lib/load.ts";
import { type Row, ratioRow } from "../lib/report.ts";
import type { Scenario, ScenarioContext } from "../lib/scenario.ts";
import { median, spread } from "../lib/stats.ts";
import { startTokenmesh } from "../lib/targets.ts";
import { base, failedCalls, SATURATE, TEN_K, validRun } from "./common.ts";

const KEYS = 1_000_000;
const FILL_BATCH = 1000;

const perCore = (m: Measurement | undefined): number => (m === undefined ? Number.NaN : 1e6 / m.cpuUsPerCall);

const SWEEP: readonly KeySpace[] = [
  { size: 1, distribution: "uniform" },
  TEN_K,
  { size: 10_000, distribution: "zipf" },
  { size: KEYS, distribution: "uniform" },
  { size: KEYS, distribution: "zipf" },
];

/** Keys the server says it holds; NaN if its metrics cannot be read. */
async function keysHeld(metricsUrl: string): Promise<number> {
  try {
    const text = await (await fetch(metricsUrl)).text();
    const m = /^tokenmesh_keys (\S+)$/m.exec(text);
    return m === null ? Number.NaN : Number(m[1]);
  } catch {
    return Number.NaN;
  }
}

function fillSpec(ctx: ScenarioContext): LoadSpec {
  return {
    ...base(ctx, 120),
    warmupS: 0,
    maxRequests: KEYS / FILL_BATCH, // each key exactly once: the driver stops after these calls
    connections: 1,
    streamsPerConnection: 4,
    ratePerSecond: null,
    keySpace: { size: KEYS, distribution: "sequential" },
    decisionsPerCall: FILL_BATCH,
  };
}

async function oneRound(ctx: ScenarioContext, round: number): Promise<{ bytesPerKey: number; sweep: Map<string, Measurement> }> {
  const target = await startTokenmesh(ctx.tools);
  try {
    // Warm the code paths first so the RSS baseline already holds the JIT's output.
    await measure(ctx.tools, target, { ...fillSpec(ctx), maxRequests: 200, keySpace: { size: 1, distribution: "uniform" } });
    await sleep(500);
    const rss0 = target.rss();
    const keys0 = await keysHeld(target.metricsUrl);
    const fill = await measure(ctx.tools, target, fillSpec(ctx));
    await sleep(1000);
    const rss1 = target.rss();
    const keys1 = await keysHeld(target.metricsUrl);
    // Without the server's count, trust the fill: every call carried 1,000 new keys.
    const added = Number.isFinite(keys1 - keys0) ? keys1 - keys0 : fill.callsPerSecond > 0 ? KEYS : Number.NaN;
    // A fill with failed calls did not store what it claims: no figure rather than a wrong one.
    const bytesPerKey = validRun(fill) ? (rss1 - rss0) / added : Number.NaN;
    ctx.log(
      `round ${round} memory: ${added} keys, RSS ${(rss0 / 2 ** 20).toFixed(0)} -> ${(rss1 / 2 ** 20).toFixed(0)} MiB, ${bytesPerKey.toFixed(0)} B/key; fill ${Math.round(fill.serverCallsPerSecond * FILL_BATCH)} decisions/s`,
    );
    const sweep = new Map<string, Measurement>();
    // Quick mode keeps the 10k reference and the cold million, uniform and skewed (the hot key
    // has its own row from phase 1).
    for (const space of ctx.settings.quick
      ? SWEEP.filter((s) => s.size !== 1 && (s.size !== 10_000 || s.distribution === "uniform"))
      : SWEEP) {
      const spec: LoadSpec = { ...base(ctx, ctx.settings.runS), ...SATURATE, ratePerSecond: null, keySpace: space, decisionsPerCall: 1 };
      const m = await measure(ctx.tools, target, spec);
      if (validRun(m)) sweep.set(describeKeySpace(space), m);
      ctx.log(
        `round ${round} keys ${describeKeySpace(space)}: ${Math.round(m.serverCallsPerSecond)} calls/s, ${m.cpuUsPerCall.toFixed(1)} us/call${failedCalls(m) > 0 ? `, ${failedCalls(m)} FAILED calls` : ""}`,
      );
    }
    return { bytesPerKey, sweep };
  } finally {
    await target.stop();
  }
}

export const memoryAndKeys: Scenario = {
  id: "memory-and-keys",
  phase: 3,
  async run(ctx) {
    // Memory barely drifts: one round when quick, three when full.
    const rounds = ctx.settings.quick ? 1 : Math.min(3, ctx.settings.rounds);
    const perKey: number[] = [];
    const sweeps: Map<string, Measurement>[] = [];
    for (let r = 1; r <= rounds; r++) {
      const { bytesPerKey, sweep } = await oneRound(ctx, r);
      perKey.push(bytesPerKey);
      sweeps.push(sweep);
    }
    const bpk = median(perKey.filter(Number.isFinite));
    const rows: Row[] = [
      {
        name: "memory per key, 1M keys held",
        value: bpk,
        unit: "bytes/key",
        baseline: null,
        baselineName: null,
        ratio: null,
        target: "<= 300 bytes/key",
        pass: Number.isFinite(bpk) ? bpk <= 300 : null,
        note: `RSS growth / keys held after filling 1M keys (1000 per call), ${rounds} round(s), spread ${(spread(perKey) * 100).toFixed(0)}%`,
      },
    ];
    const ref = describeKeySpace(TEN_K);
    const refRate = median(sweeps.map((s) => perCore(s.get(ref))).filter(Number.isFinite));
    for (const space of SWEEP) {
      const name = describeKeySpace(space);
      if (name === ref || sweeps.every((s) => !s.has(name))) continue;
      const rates = sweeps.map((s) => perCore(s.get(name))).filter(Number.isFinite);
      const row = ratioRow({
        name: `consume 1/call, ${name}: throughput per service core`,
        unit: "calls/CPU-s",
        value: median(rates),
        baseline: refRate,
        baselineName: `tokenmesh ${ref}`,
        bound: { op: ">=", bound: 0 },
        note: `same process after the 1M-key fill (keys ${space.size >= KEYS ? "all held: cache-cold" : "mostly hot"}); ${rounds} round(s); node driver`,
      });
      rows.push({ ...row, target: null, pass: null });
    }
    return rows;
  },
};
