// The per-update row (issue 14): CPU to apply one remote key update (decode, validate, join; one
// key, one writer) against the CPU of one local decision of a standalone replica at 100
// decisions per call, both in the same run. Per round, bench/micro/remote-update-cost.ts runs in
// its own process pinned to the service core, once with one key per delta (the row) and once
// with 100 keys per delta (what a loaded link carries, info); the baseline is the replication
// scenario's `solo:saturate` run of the same round: CPU-seconds of the standalone replicas over
// the decisions they made.

import { join } from "node:path";
import { runToEnd } from "../lib/processes.ts";
import { MIN_ROUNDS, notMeasured, type Row } from "../lib/report.ts";
import type { ScenarioContext } from "../lib/scenario.ts";
import { median, spread } from "../lib/stats.ts";
import type { UpdateCost } from "../micro/remote-update-cost.ts";
import { BATCH } from "./replication-setup.ts";

const REPO = new URL("../../", import.meta.url).pathname;
/** Of one local decision's CPU. */
const UPDATE_BOUND = 0.5;
const BATCHED_KEYS = 100;

export interface UpdateCostRound {
  readonly single: UpdateCost;
  readonly batched: UpdateCost;
}

async function runMicro(ctx: ScenarioContext, updates: number, keysPerDelta: number): Promise<UpdateCost> {
  const args = ["--import", "tsx", join(REPO, "bench/micro/remote-update-cost.ts"), String(updates), String(keysPerDelta)];
  const out = await runToEnd(ctx.tools, process.execPath, args, ctx.tools.serverCpus, 120_000);
  const line = out.split("\n").find((l) => l.startsWith("RESULT "));
  if (line === undefined) throw new Error(`remote-update-cost printed no result:\n${out.slice(-2000)}`);
  return JSON.parse(line.slice(7)) as UpdateCost;
}

/** One round's measurement, or undefined (logged) when it failed. */
export async function measureUpdateCost(ctx: ScenarioContext, round: number): Promise<UpdateCostRound | undefined> {
  const updates = ctx.settings.quick ? 5_000 : 20_000;
  try {
    const single = await runMicro(ctx, updates, 1);
    const batched = await runMicro(ctx, updates, BATCHED_KEYS);
    ctx.log(
      `round ${round} replication update cost: ${single.applyUs.toFixed(2)} us per update in 1-key deltas (decode ${single.decodeUs.toFixed(2)}, validate ${(single.decodeValidateUs - single.decodeUs).toFixed(2)}), ${batched.applyUs.toFixed(2)} us in ${BATCHED_KEYS}-key deltas`,
    );
    return { single, batched };
  } catch (err) {
    ctx.log(`round ${round} replication update cost: failed: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

const us = (x: number): string => x.toFixed(2);

function split(costs: readonly UpdateCost[]): string {
  const decode = median(costs.map((c) => c.decodeUs));
  const validate = median(costs.map((c) => c.decodeValidateUs - c.decodeUs));
  const all = median(costs.map((c) => c.applyUs));
  return `decode ${us(decode)} us, validate ${us(validate)} us, join and ack ${us(all - decode - validate)} us (medians of the passes' best; ${Math.round(median(costs.map((c) => c.bytesPerUpdate)))} bytes of delta per update)`;
}

/**
 * `decisionUs`: per round, CPU-us per decision of the standalone replicas at BATCH per call
 * (undefined for a round whose solo run did not count).
 */
export function updateCostRows(rounds: readonly (UpdateCostRound | undefined)[], decisionUs: readonly (number | undefined)[]): Row[] {
  const name = "replication: CPU per remote key update (decode, validate, join), 1 key, 1 writer";
  const unit = "us";
  const target = `<= ${UPDATE_BOUND}x one local decision`;
  const paired = rounds.flatMap((r, i) => {
    const d = decisionUs[i];
    return r === undefined || d === undefined || r.single.refused > 0 ? [] : [{ r, d }];
  });
  if (paired.length === 0) {
    const why = rounds.every((r) => r === undefined)
      ? "the micro-benchmark failed in every round (see the log)"
      : rounds.some((r) => r !== undefined && r.single.refused > 0)
        ? "the receiver refused some of the updates, so the figure would not be an apply's"
        : "no round had both the update cost and a valid solo:saturate run (the per-decision baseline)";
    return [notMeasured(name, unit, target, why)];
  }
  const value = median(paired.map((p) => p.r.single.applyUs));
  const baseline = median(paired.map((p) => p.d));
  const ratio = value / baseline;
  const tooFew = paired.length < MIN_ROUNDS;
  const pass = tooFew ? null : ratio <= UPDATE_BOUND;
  const single = paired.map((p) => p.r.single);
  const batched = paired.map((p) => p.r.batched);
  const bound =
    pass === false
      ? `MISS: the apply takes ${(ratio / UPDATE_BOUND).toFixed(1)}x its budget of ${us(UPDATE_BOUND * baseline)} us; it goes to ${split(single)}; in ${BATCHED_KEYS}-key deltas (the header and registry shared) ${us(median(batched.map((c) => c.applyUs)))} us per key update, ${split(batched)}; `
      : "";
  return [
    {
      name,
      value,
      unit,
      baseline,
      baselineName: `one decision, standalone replica, ${BATCH}/call`,
      ratio,
      target,
      pass,
      note: `${tooFew ? `NO VERDICT: only ${paired.length} valid round(s); ` : ""}${bound}process CPU per update of bench/micro/remote-update-cost.ts pinned to the service core: a real writer's stream of 1-key deltas (its new entry and its watermark record) replayed from bytes into a fresh receiver, best of 5 passes; baseline: CPU-seconds / decisions of the standalone replicas (solo:saturate, ${BATCH} decisions per call, 10k keys) in the same round; per round ${paired.map((p) => `${us(p.r.single.applyUs)}/${us(p.d)}`).join(", ")} us; against the micro-benchmark's own in-process baseline (standalone-decision-cost.ts: decoder, decision service, encoder, no grpc-js) ${paired.map((p) => `${p.r.single.ratio.toFixed(2)}x`).join(", ")}; ${paired.length} rounds, spread ${(spread(single.map((c) => c.applyUs)) * 100).toFixed(0)}% (baseline ${(spread(paired.map((p) => p.d)) * 100).toFixed(0)}%)`,
    },
    {
      name: `replication: CPU per remote key update in ${BATCHED_KEYS}-key deltas`,
      value: median(batched.map((c) => c.applyUs)),
      unit,
      baseline,
      baselineName: `one decision, standalone replica, ${BATCH}/call`,
      ratio: median(batched.map((c) => c.applyUs)) / baseline,
      target: null,
      pass: null,
      note: `the same micro-benchmark with ${BATCHED_KEYS} keys of one writer per delta (a loaded link sends one delta per flush), per key update; ${split(batched)}; ${paired.length} rounds, spread ${(spread(batched.map((c) => c.applyUs)) * 100).toFixed(0)}%`,
    },
  ];
}
