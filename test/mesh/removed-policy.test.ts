// A policy added, removed and added again live on a running 3-replica mesh of separate
// processes (SIGHUP). Added: it is enforced on all three. Removed on one replica first: that
// replica answers unknown policy, drops its keys, and skips (and counts) the deltas its peers,
// which still serve the policy, keep sending for them. Removed everywhere, then added again: the
// drained key starts full on every replica. Removed and added back on one replica while the
// others kept it: the kept consumption comes back with its first write (docs/design.md, "Live
// config: removed and re-added policies").
//
// Waits are on each replica's reload counter and metrics (never a fixed sleep); the loads run for
// fixed times counted from when they start.

import { readFileSync, writeFileSync } from "node:fs";
import { ClientError, Status } from "nice-grpc";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { eventually } from "../support/mesh.ts";
import {
  describeErrors,
  type LoadResult,
  type ProcessMesh,
  type ProcessReplica,
  paceLoad,
  startProcessMesh,
} from "../support/mesh-processes.ts";

const N = 3;
const SEED = 5120; // arrival gaps (printed with the figures)
/**
 * The policy added and removed: 5 tokens, 1 back an hour, so a drained key stays drained for the
 * whole test and "full after the re-add" cannot be refill. Local contention: the test drains the
 * whole bucket in one call, which share mode's probe (a third of it for a first burst) would not admit.
 */
const TEMP = { capacity: 5, refill: 1, per: "1h", contention: "local" };
const LOAD_MS = 2_000;
const EVERY_MS = 1000 / 40; // 40/s offered per replica
const IGNORED = 'tokenmesh_peer_keys_ignored_total{reason="removed_policy"}';

describe("a policy removed and added again live on a 3-replica mesh", () => {
  let mesh: ProcessMesh;
  const replica = (i: number) => mesh.replicas[i] as ProcessReplica;
  const all = [0, 1, 2];

  beforeAll(async () => {
    mesh = await startProcessMesh({ size: N, policies: { base: { capacity: 50, refill: 50, per: "1s" } } });
    await mesh.fullyConnected();
    await Promise.all(all.map((i) => mesh.ready(i)));
  }, 180_000);
  afterAll(async () => {
    await mesh?.close();
  });

  const successes = (i: number) => mesh.metric(i, 'tokenmesh_config_reloads_total{result="success"}');

  /** Sets or deletes policy `temp` in the files of `which`, sends SIGHUP, waits for each reload. */
  const reload = async (which: readonly number[], temp: Record<string, unknown> | undefined) => {
    const before = await Promise.all(which.map(successes));
    for (const i of which) {
      const file = replica(i).config;
      const config = parse(readFileSync(file, "utf8")) as { policies: Record<string, unknown> };
      if (temp === undefined) delete config.policies.temp;
      else config.policies.temp = temp;
      writeFileSync(file, stringify(config));
      replica(i).process.child.kill("SIGHUP");
    }
    await Promise.all(
      which.map((i, j) => eventually(async () => (await successes(i)) > (before[j] as number), 30_000, `replica ${i} reloaded`)),
    );
    // The counter alone can be a reload still queued from the previous step (SIGHUP and the file
    // watcher both ask): wait until each replica also serves, or refuses, temp as this step's file says.
    await Promise.all(
      which.map((i) => eventually(async () => (await servesTemp(i)) === (temp !== undefined), 30_000, `replica ${i} has this step's file`)),
    );
  };

  /** Whether replica `i` knows policy temp (a Query: nothing is consumed). */
  const servesTemp = (i: number): Promise<boolean> =>
    replica(i)
      .client.query({ decisions: [{ buckets: [{ policy: "temp", key: "probe" }] }] })
      .then(
        () => true,
        (e: unknown) => {
          if (e instanceof ClientError && e.code === Status.INVALID_ARGUMENT) return false;
          throw e;
        },
      );

  const consume = (i: number, key: string, cost = 1) =>
    replica(i).client.consume({ decisions: [{ buckets: [{ policy: "temp", key, cost }] }] });
  const remaining = async (i: number, key: string) =>
    (await replica(i).client.query({ decisions: [{ buckets: [{ policy: "temp", key }] }] })).results[0]?.buckets[0]?.remaining;
  /** What the server answers for a policy it does not have: INVALID_ARGUMENT naming it. */
  const expectUnknown = async (i: number) => {
    const err = await consume(i, "k").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, `replica ${i} still serves temp`).toBeInstanceOf(ClientError);
    expect((err as ClientError).code).toBe(Status.INVALID_ARGUMENT);
    expect((err as ClientError).details).toMatch(/unknown policy "temp"/);
  };

  it("added on all three: enforced on every replica", async () => {
    await expectUnknown(0);
    await reload(all, TEMP);
    const until = Date.now() + LOAD_MS;
    const loads: LoadResult[] = await Promise.all(all.map((i) => paceLoad(replica(i).client, "temp", "k", EVERY_MS, until, SEED + i)));
    const admitted = loads.reduce((n, l) => n + l.allowed, 0);
    console.log(
      `added (arrival seed ${SEED}): admitted ${admitted} (per replica ${loads.map((l) => l.allowed).join("/")}, ` +
        `denied ${loads.map((l) => l.denied).join("/")}) of capacity ${TEMP.capacity}; ${describeErrors(loads)}`,
    );
    expect(
      loads.every((l) => l.errors === 0),
      describeErrors(loads),
    ).toBe(true);
    // One bucket for the mesh: at least its capacity, at most one capacity per replica that
    // admitted before hearing the others (the refill, 1 an hour, adds nothing here).
    expect(admitted).toBeGreaterThanOrEqual(TEMP.capacity);
    expect(admitted).toBeLessThanOrEqual(N * TEMP.capacity);
    // Every replica enforces it: each one denied most of what it was offered.
    for (const l of loads) expect(l.denied).toBeGreaterThan(l.allowed);
    await eventually(
      async () => (await Promise.all(all.map((i) => remaining(i, "k")))).every((r) => r === 0n),
      10_000,
      "drained on all three",
    );
  }, 120_000);

  it("removed on one replica first: unknown policy there, its keys dropped, peers' deltas for them ignored and counted", async () => {
    const ignoredBefore = await mesh.metric(0, IGNORED);
    expect(ignoredBefore).toBe(0);
    await reload([0], undefined);
    await expectUnknown(0);
    expect(await mesh.metric(0, "tokenmesh_keys")).toBe(0); // temp/k was the only key it held
    // p2 and p3 still serve temp: their consumption keeps arriving at p1 in deltas.
    const until = Date.now() + LOAD_MS;
    const loads = await Promise.all([1, 2].map((i) => paceLoad(replica(i).client, "temp", `k${i}`, EVERY_MS, until, SEED + 10 + i)));
    expect(
      loads.every((l) => l.errors === 0),
      describeErrors(loads),
    ).toBe(true);
    await eventually(async () => (await mesh.metric(0, IGNORED)) > ignoredBefore, 30_000, "p1 counted ignored key parts");
    // Skipped, not joined: p1 still holds none of them, while its peers do.
    expect(await mesh.metric(0, "tokenmesh_keys")).toBe(0);
    expect(await mesh.metric(1, "tokenmesh_keys")).toBeGreaterThanOrEqual(2); // k and k2 at least
    // Its peers keep converging between themselves.
    await eventually(
      async () => (await remaining(1, "k2")) === (await remaining(2, "k2")) && (await remaining(1, "k3")) === (await remaining(2, "k3")),
      10_000,
      "p2 and p3 agree",
    );
    console.log(`removed on p1: p1 ignored ${await mesh.metric(0, IGNORED)} key parts from p2/p3`);
  }, 120_000);

  it("removed on the others too, then added again: the drained key starts full on every replica", async () => {
    await reload([1, 2], undefined);
    for (const i of all) await expectUnknown(i);
    await eventually(
      async () => (await Promise.all(all.map((i) => mesh.metric(i, "tokenmesh_keys")))).every((n) => n === 0),
      10_000,
      "no replica holds a key of temp",
    );
    await reload(all, TEMP);
    // Every replica dropped temp's keys at its removal, and none kept the policy meanwhile, so
    // nothing brings the old consumption back: full (5), not the drained 0 (1 an hour refills).
    for (const i of all) expect(await remaining(i, "k")).toBe(BigInt(TEMP.capacity));
    // And enforced again: the whole capacity at once on p1, after which p2 sees it taken.
    expect((await consume(0, "k", TEMP.capacity)).results[0]?.allowed).toBe(true);
    await eventually(async () => (await remaining(1, "k")) === 0n, 10_000, "p2 sees p1's consumption");
    expect((await consume(1, "k")).results[0]?.allowed).toBe(false);
  }, 120_000);

  it("removed and added back on one replica while the others kept it: the kept consumption comes back at its first write", async () => {
    await reload([0], undefined);
    // p2 drains a key p1 ignores meanwhile.
    expect((await consume(1, "kept", TEMP.capacity)).results[0]?.allowed).toBe(true);
    await eventually(async () => (await remaining(2, "kept")) === 0n, 10_000, "p3 sees p2's consumption");
    await reload([0], TEMP);
    // p1 dropped the key and learnt nothing of it: it answers full, and admits one call on it...
    expect(await remaining(0, "kept")).toBe(BigInt(TEMP.capacity));
    expect((await consume(0, "kept")).results[0]?.allowed).toBe(true);
    // ...which p2 and p3 answer with what p1 lacks: the drain is back on p1, and p1 denies.
    await eventually(async () => (await remaining(0, "kept")) === 0n, 10_000, "p1 learns the kept consumption");
    expect((await consume(0, "kept")).results[0]?.allowed).toBe(false);
  }, 120_000);
});
