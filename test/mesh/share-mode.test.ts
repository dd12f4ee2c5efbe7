// Share mode (docs/design.md, "Modes") on three real replica processes, every link through a
// fault proxy with 50 ms of one-way delay: a burst from three idle replicas admits about one
// bucket (local mode, same mesh, admits about three), a partition keeps the cut-off replica
// serving (its share, then the whole bucket once its peers are retired), and a restarted replica
// gets its part again without over-admitting more than C.
//
// Every phase waits for readiness or for an answer, never for a fixed time to pass before it
// checks something; the bounds leave room for a loaded machine.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeErrors, type ProcessMesh, paceLoad, startProcessMesh } from "../support/mesh-processes.ts";
import { windowExcess } from "../support/window-excess.ts";

const DELAY_MS = 50;
const BURST_C = 30; // capacity of the burst policies; they refill 1 token per hour
const C = 20;
const R = 20;
const SEED = 4409; // arrival gaps

describe("share mode on three processes over 50 ms links", () => {
  let mesh: ProcessMesh;
  beforeAll(async () => {
    mesh = await startProcessMesh({
      size: 3,
      proxied: true,
      policies: {
        burst: { capacity: BURST_C, refill: 1, per: "1h" },
        burstLocal: { capacity: BURST_C, refill: 1, per: "1h", contention: "local" },
        hot: { capacity: C, refill: R, per: "1s" },
      },
      mesh: { retireAfter: "1s", warmupTimeout: "3s" },
    });
    for (const row of mesh.proxies) for (const p of row) p?.setDelay(DELAY_MS);
    await mesh.fullyConnected();
    await Promise.all(mesh.replicas.map((_, i) => mesh.ready(i)));
  }, 180_000);
  afterAll(async () => {
    await mesh?.close();
  });

  /** Every replica sends `each` one-token consumes of policy/key at once; returns admitted per replica. */
  async function burst(policy: string, key: string, each: number): Promise<number[]> {
    return Promise.all(
      mesh.replicas.map(async (r) => {
        const answers = await Promise.all(
          Array.from({ length: each }, () => r.client.consume({ decisions: [{ buckets: [{ policy, key }] }] })),
        );
        return answers.filter((a) => a.results[0]?.allowed === true).length;
      }),
    );
  }

  it("a burst from three idle replicas admits about one bucket; the same burst in local mode about three", async () => {
    const shared = await burst("burst", "k", 40);
    const local = await burst("burstLocal", "k", 40);
    const total = shared.reduce((a, b) => a + b, 0);
    const localTotal = local.reduce((a, b) => a + b, 0);
    console.log(
      `share-mode burst: admitted ${shared.join("/")} = ${total} (one bucket: ${BURST_C}); local mode ${local.join("/")} = ${localTotal}`,
    );
    expect(total).toBeLessThanOrEqual(1.25 * BURST_C);
    // Each replica got its part (C / n_live): nobody was shut out by the others' burst.
    for (const n of shared) expect(n).toBeGreaterThanOrEqual(Math.floor(BURST_C / 3));
    // The flag works: in local mode each replica spends the whole bucket before it hears of the others.
    expect(localTotal).toBeGreaterThan(2 * BURST_C);
  }, 60_000);

  it("a partition: the cut-off replica keeps serving (its share, then the whole bucket); after the heal the rate is r", async () => {
    const t0 = Date.now();
    const splitAt = t0 + 1_500;
    const healAt = splitAt + 3_000;
    // As in partition.test.ts: the rate is measured over the last 2 s of 4 s after the heal (a
    // replica may be locked out for up to C/r + 1 s = 2 s while the split's debt is paid).
    const end = healAt + 4_000;
    const every = 1000 / 60;
    const loads = mesh.replicas.map((r, i) => paceLoad(r.client, "hot", "p", every, end, SEED + i));
    await new Promise((r) => setTimeout(r, splitAt - Date.now()));
    mesh.partition([0], [1, 2], true);
    await new Promise((r) => setTimeout(r, healAt - Date.now()));
    mesh.partition([0], [1, 2], false);
    const results = await Promise.all(loads);
    const countIn = (times: readonly number[], from: number, to: number): number => times.filter((t) => t >= from && t < to).length;
    // Availability first: once its peers are retired (1 s), the lone side admits from the whole bucket.
    const lateSplit = countIn(results[0]?.allowedAt ?? [], healAt - 1_000, healAt);
    const all = results.flatMap((r) => r.allowedAt);
    const tail = countIn(all, end - 2_000, end) / 2;
    for (const [i, r] of results.entries()) {
      const perHalfSecond = Array.from({ length: Math.ceil((end - t0) / 500) }, (_, k) =>
        countIn(r.allowedAt, t0 + k * 500, t0 + (k + 1) * 500),
      );
      console.log(`share-mode partition: replica ${i + 1} admissions per 0.5 s: ${perHalfSecond.join(" ")}`);
    }
    console.log(
      `share-mode partition: cut-off replica admitted ${lateSplit} in the last second of the split (r = ${R}/s); rate over the last 2 s ${tail}/s; ${describeErrors(results)}`,
    );
    expect(lateSplit).toBeGreaterThanOrEqual(0.5 * R);
    // Over the split, at most one bucket per side beyond the first (property 8), plus slack C.
    expect(countIn(all, splitAt, healAt)).toBeLessThanOrEqual(2 * (R * 3 + C) + C);
    expect(tail).toBeGreaterThanOrEqual(R * 0.75);
    expect(tail).toBeLessThanOrEqual(R * 1.25 + C / 2);
  }, 90_000);

  it("a restart: the new incarnation gets its part again, and no window over-admits more than C", async () => {
    let end = Number.POSITIVE_INFINITY;
    const every = 1000 / 60;
    const survivors = [0, 2].map((i) =>
      paceLoad((mesh.replicas[i] as (typeof mesh.replicas)[0]).client, "hot", "r", every, () => end, SEED + 10 + i),
    );
    await new Promise((r) => setTimeout(r, 1_000));
    await mesh.kill(1);
    await mesh.restart(1);
    await mesh.ready(1);
    const readyAt = Date.now();
    end = readyAt + 4_000;
    const after = await paceLoad((mesh.replicas[1] as (typeof mesh.replicas)[0]).client, "hot", "r", every, end, SEED + 20);
    const results = [...(await Promise.all(survivors)), after];
    const worst = windowExcess(
      results.flatMap((r) => r.admissions),
      C,
      R,
    );
    console.log(
      `share-mode restart: restarted replica admitted ${after.allowed} in 4 s after ready (fair share ${(R * 4) / 3}); worst window excess ${worst.excess.toFixed(2)} (bound C = ${C}); ${describeErrors(results)}`,
    );
    expect(worst.excess).toBeLessThanOrEqual(C);
    // Demand figures give it a share again: at least half of a third of r over the 4 s.
    expect(after.allowed).toBeGreaterThanOrEqual(Math.floor((0.5 * R * 4) / 3));
    const first = after.allowedAt[0];
    expect(first).toBeDefined();
    expect((first as number) - readyAt).toBeLessThanOrEqual((C / R + 1) * 1000);
  }, 240_000);
});
