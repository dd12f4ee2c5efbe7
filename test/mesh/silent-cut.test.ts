// A network cut that closes nothing: the fault proxies between two replica processes keep their
// connections open and drop every byte, as a dropped route or a discarding firewall would. Only
// the keepalive pings on each peer connection can see it. They must see it well within
// `retireAfter`: with relays per region, another replica takes over as its region's relay only
// once this link is down, and until then the other regions hear nothing of the cut-off region and
// retire its writers. The pings are a quarter of retireAfter apart and may go unanswered for a
// quarter of it (at least 1 s each; src/mesh/peer-transport.ts, peerKeepalive), so each side
// reports the link down within half of retireAfter on a quiet machine; the bound here is the
// whole of it, for a loaded one. With grpc-js's keepalive as it was (a ping every 10 s, 5 s to
// answer), the links stayed up for 10-15 s of silence.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/mesh.ts";
import { type ProcessMesh, startProcessMesh } from "../support/mesh-processes.ts";

const RETIRE_AFTER_MS = 4_000;

describe("a silent network cut between two replicas", () => {
  let mesh: ProcessMesh;
  beforeAll(async () => {
    mesh = await startProcessMesh({
      size: 2,
      proxied: true,
      policies: { slow: { capacity: 1000, refill: 1, per: "1h", contention: "local" } },
      mesh: { retireAfter: `${RETIRE_AFTER_MS}ms`, warmupTimeout: "2s" },
    });
    await mesh.fullyConnected();
    await Promise.all(mesh.replicas.map((_, i) => mesh.ready(i)));
  }, 180_000);
  afterAll(async () => {
    await mesh?.close();
  });

  it("is noticed by both sides within retireAfter, and the link comes back when the route does", async () => {
    const silencedAt = Date.now();
    mesh.silence([0], [1]);
    const noticed: number[] = [];
    await eventually(
      async () => {
        for (const i of [0, 1]) {
          if (noticed[i] === undefined && (await mesh.metric(i, "tokenmesh_peers_connected")) === 0) noticed[i] = Date.now() - silencedAt;
        }
        return noticed[0] !== undefined && noticed[1] !== undefined;
      },
      30_000,
      "both replicas to report the silenced link down",
    );
    console.log(`silent cut (retireAfter ${RETIRE_AFTER_MS} ms): link down after ${noticed[0]} ms on p1, ${noticed[1]} ms on p2`);
    for (const ms of noticed) expect(ms).toBeLessThanOrEqual(RETIRE_AFTER_MS);

    // Consumption made during the silence crosses once the route is back.
    await mesh.replicas[0]?.client.consume({ decisions: [{ buckets: [{ policy: "slow", key: "cut", cost: 7 }] }] });
    mesh.partition([0], [1], false);
    await mesh.fullyConnected();
    await eventually(
      async () => {
        const q = await mesh.replicas[1]?.client.query({ decisions: [{ buckets: [{ policy: "slow", key: "cut" }] }] });
        return Number(q?.results[0]?.buckets[0]?.remaining) === 993;
      },
      30_000,
      "p2 to see the 7 tokens p1 took during the silence",
    );
  }, 120_000);
});
