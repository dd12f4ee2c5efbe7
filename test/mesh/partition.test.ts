// A partition made by fault-injecting proxies between two replica processes, longer than
// T_retire so that each side retires the other (the mutual-retirement case), then a heal. During
// the split each side admits on its own (the price of availability, at most r*T_split + C for
// the extra side); after the heal they converge, nobody is locked out longer than C/r + 1 s,
// and the global rate returns to r.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/mesh.ts";
import { type ProcessMesh, paceLoad, startProcessMesh } from "../support/mesh-processes.ts";

const C = 20;
const R = 20;
const SPLIT_MS = 4_000;
const SEED = 2207; // arrival gaps (printed with the figures)

const countIn = (times: readonly number[], from: number, to: number): number => times.filter((t) => t >= from && t < to).length;

describe("partition and heal", () => {
  let mesh: ProcessMesh;
  beforeAll(async () => {
    mesh = await startProcessMesh({
      size: 2,
      proxied: true,
      policies: { hot: { capacity: C, refill: R, per: "1s" }, slow: { capacity: 1000, refill: 1, per: "1h" } },
      mesh: { retireAfter: "1s", warmupTimeout: "2s" },
    });
    await mesh.fullyConnected();
    await Promise.all(mesh.replicas.map((_, i) => mesh.ready(i)));
  }, 180_000);
  afterAll(async () => {
    await mesh?.close();
  });

  it("bounds over-admission during the split, then converges with no lock-out", async () => {
    const t0 = Date.now();
    const splitAt = t0 + 1_000;
    const healAt = splitAt + SPLIT_MS;
    const end = healAt + 4_000;
    const every = 1000 / 60;
    const loads = mesh.replicas.map((r, i) => paceLoad(r.client, "hot", "k", every, end, SEED + i));
    await new Promise((r) => setTimeout(r, splitAt - Date.now()));
    mesh.partition([0], [1], true);
    // Different consumption on each side of a key that barely refills.
    await mesh.replicas[0]?.client.consume({ decisions: [{ buckets: [{ policy: "slow", key: "s", cost: 10 }] }] });
    await mesh.replicas[1]?.client.consume({ decisions: [{ buckets: [{ policy: "slow", key: "s", cost: 25 }] }] });
    await new Promise((r) => setTimeout(r, healAt - Date.now()));
    mesh.partition([0], [1], false);
    const results = await Promise.all(loads);
    const all = results.flatMap((r) => r.allowedAt);

    const split = countIn(all, splitAt, healAt);
    const splitIdeal = R * (SPLIT_MS / 1000);
    const price = R * (SPLIT_MS / 1000) + C;
    console.log(
      `partition (arrival seed ${SEED}): admitted ${split} during the ${SPLIT_MS / 1000}s split (one bucket: ${splitIdeal}; price allowed for the extra side: ${price})`,
    );
    expect(split).toBeLessThanOrEqual(splitIdeal + price + C);

    // No lock-out: each side admits again within C/r + 1 s of the heal.
    for (const r of results) {
      const first = r.allowedAt.find((t) => t >= healAt);
      expect(first).toBeDefined();
      expect((first as number) - healAt).toBeLessThanOrEqual((C / R + 1) * 1000);
    }
    // The rate is back to r: over the last 2 s, about r per second in total.
    const tail = countIn(all, end - 2_000, end) / 2;
    for (const [i, r] of results.entries()) {
      const perHalfSecond = Array.from({ length: Math.ceil((end - t0) / 500) }, (_, k) =>
        countIn(r.allowedAt, t0 + k * 500, t0 + (k + 1) * 500),
      );
      console.log(`replica ${i + 1} admissions per 0.5 s: ${perHalfSecond.join(" ")}`);
    }
    console.log(`partition: rate over the last 2 s ${tail}/s (r = ${R}/s)`);
    expect(tail).toBeGreaterThanOrEqual(R * 0.75);
    expect(tail).toBeLessThanOrEqual(R * 1.25 + C / 2);

    // Converged: both sides see both sides' consumption.
    await eventually(
      async () =>
        (
          await Promise.all(
            mesh.replicas.map(
              async (r) =>
                (
                  await r.client.query({ decisions: [{ buckets: [{ policy: "slow", key: "s" }] }] })
                ).results[0]?.buckets[0]?.remaining,
            ),
          )
        ).every((x) => x === 965n),
      30_000,
      "both sides report 1000 - 10 - 25",
    );
    expect(await mesh.metric(0, "tokenmesh_retirements_total")).toBeGreaterThanOrEqual(1);
  }, 90_000);
});
