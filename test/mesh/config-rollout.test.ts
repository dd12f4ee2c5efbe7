// A live config rollout on a running, loaded 3-replica mesh of separate processes: a policy is
// lowered one replica at a time, then raised on all at once, each with a higher `version` and an
// `effectiveAt` a few seconds ahead; what the mesh admits after the effective time is checked
// against one ideal bucket that switches there (`min(level, C_new)` at it, the new rate after),
// and every replica's Query reports the new limit. A bad file mid-rollout is refused and counted
// on that replica, which keeps serving the old limit and stays up.
//
// Waits are on the reload counter each replica exports (never a fixed sleep); the load runs for
// a fixed time counted from the effective time, however long the rollout took.

import { readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import {
  describeErrors,
  type LoadResult,
  type ProcessMesh,
  type ProcessReplica,
  paceLoad,
  startProcessMesh,
} from "../support/mesh-processes.ts";

const N = 3;
const SEED = 4410; // arrival gaps (printed with the figures)
const EVERY_MS = 1000 / 40; // 40/s offered per replica, 120/s in all: above every limit used here
const LEAD_MS = 5_000; // effectiveAt this far ahead: the one-at-a-time rollout took 1.4 s with both cores busy
const MEASURE_MS = 4_000; // admissions counted over [effectiveAt, effectiveAt + MEASURE_MS]

/**
 * Tolerance above the ideal bucket. The design bounds global over-admission in any window by
 * one capacity per replica that admitted concurrently before hearing the others (each replica
 * may spend what it believes is left), plus one second of the rate for peer lag on a machine
 * with both cores busy: n * C + r * 1 s. With 3 replicas and the lowered limit (C = 5, r = 5/s)
 * that is 20 tokens over an ideal of 25 in 4 s; the old limit (50/s) would admit about 200.
 */
const slack = (capacity: number, rate: number) => N * capacity + rate;

interface Limit {
  readonly capacity: number;
  readonly rate: number;
  readonly version: number;
}

describe("live config rollout on a loaded 3-replica mesh", () => {
  let mesh: ProcessMesh;
  const replica = (i: number) => mesh.replicas[i] as ProcessReplica;

  beforeAll(async () => {
    mesh = await startProcessMesh({ size: N, policies: { hot: { capacity: 50, refill: 50, per: "1s" } } });
    await mesh.fullyConnected();
    await Promise.all(mesh.replicas.map((_, i) => mesh.ready(i)));
  }, 180_000);
  afterAll(async () => {
    await mesh?.close();
  });

  /** `tokenmesh_config_reloads_total{result}` on replica i's /metrics. */
  const reloads = async (i: number, result: "success" | "failure"): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${replica(i).metricsPort}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith(`tokenmesh_config_reloads_total{result="${result}"} `));
    return line === undefined ? Number.NaN : Number(line.split(" ")[1]);
  };

  /** Polls until replica i's counter passes `above` (a reload was applied or refused). */
  const reloaded = async (i: number, result: "success" | "failure", above: number, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if ((await reloads(i, result)) > above) return;
      if (Date.now() > deadline) throw new Error(`replica ${i}: no ${result} reload within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  /** Rewrites replica i's policy `hot` (the rest of its file unchanged) and sends SIGHUP. */
  const rewrite = (i: number, hot: Record<string, unknown>) => {
    const file = replica(i).config;
    const config = parse(readFileSync(file, "utf8")) as { policies: Record<string, unknown> };
    config.policies.hot = hot;
    writeFileSync(file, stringify(config));
    replica(i).process.child.kill("SIGHUP");
  };

  const reported = async (i: number) =>
    (await replica(i).client.query({ decisions: [{ buckets: [{ policy: "hot", key: "k" }] }] })).results[0]?.buckets[0]?.capacity;

  /**
   * Loads key `k` from every replica while `rollout` runs, until MEASURE_MS after the effective
   * time; returns what was admitted certainly after it (sent at or after the effective time).
   */
  async function underLoad(effectiveMs: number, rollout: () => Promise<void>, seed: number) {
    const end = effectiveMs + MEASURE_MS;
    const loads = mesh.replicas.map((r, i) => paceLoad(r.client, "hot", "k", EVERY_MS, end, seed + i));
    const rolloutStart = Date.now();
    await rollout();
    const rolloutMs = Date.now() - rolloutStart;
    const results: LoadResult[] = await Promise.all(loads);
    const after = results.map((r) => r.admissions.filter((a) => a.sentMs >= effectiveMs).length);
    const measuredS = (Math.max(...results.flatMap((r) => r.admissions.map((a) => a.receivedMs)), effectiveMs) - effectiveMs) / 1000;
    return { results, after, admitted: after.reduce((a, b) => a + b, 0), rolloutMs, measuredS };
  }

  const check = (label: string, to: Limit, run: Awaited<ReturnType<typeof underLoad>>, seconds: number) => {
    const ideal = to.capacity + to.rate * seconds;
    console.log(
      `${label} (arrival seed ${SEED}): rollout took ${run.rolloutMs} ms; admitted after the effective time ` +
        `${run.admitted} (per replica ${run.after.join("/")}) in ${seconds.toFixed(2)} s; ideal ${ideal.toFixed(1)}, ` +
        `allowed up to ${(ideal + slack(to.capacity, to.rate)).toFixed(1)}; ${describeErrors(run.results)}`,
    );
    expect(run.rolloutMs, "the rollout finished before the effective time").toBeLessThan(LEAD_MS);
    expect(run.admitted).toBeLessThanOrEqual(ideal + slack(to.capacity, to.rate));
    // The new limit is enforced, not just capped: the drivers offer far more than the rate, so
    // the mesh admits most of it (half leaves room for a loaded machine).
    expect(run.admitted).toBeGreaterThanOrEqual(0.5 * to.rate * seconds);
  };

  /** The policy `to`, taking effect LEAD_MS from now (time enough for a rollout under load). */
  const policyAhead = (to: Limit) => {
    const effectiveMs = Date.now() + LEAD_MS;
    const hot = {
      capacity: to.capacity,
      refill: to.rate,
      per: "1s",
      version: to.version,
      effectiveAt: new Date(effectiveMs).toISOString(),
    };
    return { effectiveMs, hot };
  };

  it("lowers a policy one replica at a time: the new limit applies from the effective time", async () => {
    const to: Limit = { capacity: 5, rate: 5, version: 1 };
    const { effectiveMs, hot } = policyAhead(to);
    const run = await underLoad(
      effectiveMs,
      async () => {
        for (let i = 0; i < N; i++) {
          const before = await reloads(i, "success");
          rewrite(i, hot);
          await reloaded(i, "success", before);
        }
      },
      SEED,
    );
    check("lower 50 -> 5, one at a time", to, run, MEASURE_MS / 1000);
    for (let i = 0; i < N; i++) expect(await reported(i)).toBe(BigInt(to.capacity));
  }, 120_000);

  it("raises it on all replicas at once: the new limit applies from the effective time", async () => {
    const to: Limit = { capacity: 40, rate: 40, version: 2 };
    const { effectiveMs, hot } = policyAhead(to);
    const run = await underLoad(
      effectiveMs,
      async () => {
        const before = await Promise.all(mesh.replicas.map((_, i) => reloads(i, "success")));
        for (let i = 0; i < N; i++) rewrite(i, hot);
        await Promise.all(mesh.replicas.map((_, i) => reloaded(i, "success", before[i] as number)));
      },
      SEED + 10,
    );
    check("raise 5 -> 40, all at once", to, run, MEASURE_MS / 1000);
    for (let i = 0; i < N; i++) expect(await reported(i)).toBe(BigInt(to.capacity));
  }, 120_000);

  it("refuses a bad file mid-rollout: that replica keeps the old limit, counts it and stays up", async () => {
    const failuresBefore = await reloads(0, "failure");
    const successesBefore = await reloads(0, "success");
    rewrite(0, { capacity: 10, refill: [10], per: "1s", version: 3 }); // refill must be a number
    await reloaded(0, "failure", failuresBefore);
    expect(await reloads(0, "success")).toBe(successesBefore);
    expect(replica(0).process.child.exitCode).toBeNull();
    expect(replica(0).process.stdout() + replica(0).process.stderr()).toContain("policies.hot.refill");
    expect(await reported(0)).toBe(40n);
    // Still serving decisions under the old limit.
    const r = await replica(0).client.consume({ decisions: [{ buckets: [{ policy: "hot", key: "fresh" }] }] });
    expect(r.results[0]?.allowed).toBe(true);
    expect(r.results[0]?.buckets[0]?.capacity).toBe(40n);
  }, 60_000);
});
