// A peer that answers in bursts, as a replica does whose event loop is busy reading a backlog:
// replica p2 is stopped (SIGSTOP) for 700 ms of every 900 while p1 keeps changing keys and
// flushes every 150 ms. Its
// socket keeps receiving, and each time it runs it reads, applies and acks everything at once.
// Nothing is lost, so p1 must not go back to the last ack and send it all again. Before issue
// 14's fix p1 resent after every 500 ms of silence, about once per stop (a saturated mesh then
// fell seconds behind on resends and shed its callers); now it learns how long p2's silences
// last and resends at most for the first one or two. Afterwards both hold the same state.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/mesh.ts";
import { type ProcessMesh, startProcessMesh } from "../support/mesh-processes.ts";

const STOPS = 6;
const STOPPED_MS = 700;
const RUNNING_MS = 200;

describe("a peer that answers in bursts", () => {
  let mesh: ProcessMesh;
  beforeAll(async () => {
    mesh = await startProcessMesh({
      size: 2,
      policies: { slow: { capacity: 1000, refill: 1, per: "1h" } },
      // Flushes as rare as on a replica whose own event loop is busy (a saturated one's long
      // turns): fewer deltas per silence than the link's in-flight cap (8), so each flush still
      // decides whether to go back to the ack.
      mesh: { warmupTimeout: "2s", flushInterval: "150ms" },
    });
    await mesh.fullyConnected();
    await Promise.all(mesh.replicas.map((_, i) => mesh.ready(i)));
  }, 180_000);
  afterAll(async () => {
    const p2 = mesh?.replicas[1];
    if (p2 !== undefined && p2.process.child.exitCode === null) p2.process.child.kill("SIGCONT");
    await mesh?.close();
  });

  it("is not sent its backlog again on every burst", async () => {
    const [p1, p2] = mesh.replicas;
    if (p1 === undefined || p2 === undefined) throw new Error("two replicas");
    const before = await mesh.metric(0, "tokenmesh_peer_resends_total");
    let stop = false;
    let n = 0;
    const load = (async () => {
      while (!stop) {
        await p1.client.consume({ decisions: [{ buckets: [{ policy: "slow", key: `k${n++ % 50}` }] }] });
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    try {
      for (let i = 0; i < STOPS; i++) {
        p2.process.child.kill("SIGSTOP");
        await new Promise((r) => setTimeout(r, STOPPED_MS));
        p2.process.child.kill("SIGCONT");
        await new Promise((r) => setTimeout(r, RUNNING_MS));
      }
    } finally {
      stop = true;
      p2.process.child.kill("SIGCONT");
      await load;
    }
    const resends = (await mesh.metric(0, "tokenmesh_peer_resends_total")) - before;
    console.log(`bursty peer: p1 resent ${resends} times over ${STOPS} stops of ${STOPPED_MS} ms (${n} calls)`);
    expect(resends).toBeLessThanOrEqual(2);
    // Nothing was lost on the way: p2 holds every key p1 changed.
    const keys = await mesh.metric(0, "tokenmesh_keys");
    expect(keys).toBeGreaterThan(0);
    await eventually(async () => (await mesh.metric(1, "tokenmesh_keys")) === keys, 20_000, `p2 holding p1's ${keys} keys`);
  }, 60_000);
});
