// Strict mode on real processes (docs/design.md, section 9): three replicas whose peer links all
// go through fault proxies adding 50 ms each way, one strict policy banked by p1. A burst from
// the three idle replicas never admits more than one bucket over any window; a replica cut off
// from the bank spends at most what it held and then denies for escrow; a restarted holder is
// served again and the window bound holds across it.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuild } from "../support/build.ts";
import { eventually } from "../support/mesh.ts";
import { describeErrors, type ProcessMesh, paceLoad, startProcessMesh } from "../support/mesh-processes.ts";
import { windowExcess } from "../support/window-excess.ts";

const C = 10;
const R = 20;
const LEASE_MS = 1_000;
const DELAY_MS = 50;

describe("strict mode across processes, 50 ms links", () => {
  let mesh: ProcessMesh;
  beforeAll(async () => {
    ensureBuild();
    mesh = await startProcessMesh({
      size: 3,
      proxied: true,
      policies: { strict: { capacity: C, refill: R, per: "1s", mode: "strict", bank: "p1", lease: `${LEASE_MS}ms` } },
      mesh: { warmupTimeout: "1s" },
    });
    for (const row of mesh.proxies) for (const p of row) p?.setDelay(DELAY_MS);
    await mesh.fullyConnected();
    await Promise.all(mesh.replicas.map((_, i) => mesh.ready(i)));
    // Wait until the bank has started granting (it waits L + margin after its start): p1 admits.
    await eventually(
      async () =>
        (await mesh.replicas[0]?.client.consume({ decisions: [{ buckets: [{ policy: "strict", key: "warm" }] }] }))?.results[0]?.allowed ===
        true,
      30_000,
      "the bank granting",
    );
  }, 180_000);
  afterAll(async () => {
    await mesh?.close();
  });

  it("a burst from three idle replicas admits at most C + r*t over every window", async () => {
    const end = Date.now() + 3_000;
    const loads = await Promise.all(mesh.replicas.map((r, i) => paceLoad(r.client, "strict", "burst", 5, end, 41 + i)));
    const admissions = loads.flatMap((l) => l.admissions);
    const over = windowExcess(admissions, C, R);
    const first = Math.min(...admissions.map((a) => a.sentMs));
    const last = Math.max(...admissions.map((a) => a.receivedMs));
    console.log(
      `strict burst: admitted ${admissions.length} (${loads.map((l) => l.allowed).join("/")}) in ${last - first} ms; worst window excess ${over.excess.toFixed(2)} (bound 0); ${describeErrors(loads)}`,
    );
    expect(
      loads.every((l) => l.errors === 0),
      describeErrors(loads),
    ).toBe(true);
    expect(over.excess).toBeLessThanOrEqual(0);
    expect(admissions.length).toBeLessThanOrEqual(C + (R * (last - first)) / 1000);
    // And strict is not just "deny everything": the replicas together used most of the rate.
    expect(admissions.length).toBeGreaterThan(R);
  }, 60_000);

  it("a replica cut off from the bank spends at most its share, then denies for escrow", async () => {
    const client = mesh.replicas[2]?.client;
    if (client === undefined) throw new Error("no p3");
    // p3 holds a share of the key after a second of demand.
    const warm = Date.now() + 1_500;
    await paceLoad(client, "strict", "cut", 10, warm, 7);
    mesh.partition([2], [0, 1], true);
    const cutAt = Date.now();
    const during = await paceLoad(client, "strict", "cut", 10, cutAt + LEASE_MS + 1_000, 8);
    const late = during.admissions.filter((a) => a.sentMs > cutAt + LEASE_MS + 100);
    const answer = await client.consume({ decisions: [{ buckets: [{ policy: "strict", key: "cut" }] }] });
    mesh.partition([2], [0, 1], false);
    const status = answer.results[0]?.buckets[0];
    console.log(
      `strict partition: p3 admitted ${during.allowed} after the cut (${late.length} later than L + 100 ms); then deny_reason ${status?.denyReason} held ${status?.heldTokens}`,
    );
    // At most its share's capacity plus its rate until the lease ends: C + r * L in the worst case.
    expect(during.allowed).toBeLessThanOrEqual(C + (R * LEASE_MS) / 1000);
    expect(late.length).toBe(0);
    expect(answer.results[0]?.allowed).toBe(false);
    expect(status?.denyReason).toBe(2); // DENY_REASON_ESCROW
  }, 60_000);

  it("a restarted holder is served again, and the window bound holds across the restart", async () => {
    await mesh.fullyConnected();
    const end = Date.now() + 6_000;
    const killAt = Date.now() + 1_500;
    const loads = mesh.replicas.map((r, i) => (i === 1 ? undefined : paceLoad(r.client, "strict", "restart", 20, end, 90 + i)));
    const p2 = (async () => {
      const before = await paceLoad(mesh.replicas[1]!.client, "strict", "restart", 20, killAt, 91);
      await mesh.kill(1);
      await mesh.restart(1);
      await mesh.ready(1);
      const after = await paceLoad(mesh.replicas[1]!.client, "strict", "restart", 20, Math.max(end, Date.now() + 3_000), 92);
      return { before, after };
    })();
    const [others, mine] = await Promise.all([Promise.all(loads.filter((l) => l !== undefined)), p2]);
    const admissions = [...others.flatMap((l) => l.admissions), ...mine.before.admissions, ...mine.after.admissions];
    const over = windowExcess(admissions, C, R);
    console.log(
      `strict restart: admitted ${admissions.length}; p2 before ${mine.before.allowed}, after restart ${mine.after.allowed}; worst window excess ${over.excess.toFixed(2)} (bound 0)`,
    );
    expect(over.excess).toBeLessThanOrEqual(0);
    expect(mine.after.allowed).toBeGreaterThan(0);
  }, 120_000);
});
