// Query with include_replicas: each replica's part in a bucket and how far behind it is, as the
// answering replica knows it, over a real 2-replica mesh.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, type InProcessMesh, type MeshReplica, startInProcessMesh } from "../support/mesh.ts";

describe("Query include_replicas", () => {
  let mesh: InProcessMesh;
  let a: MeshReplica;
  let b: MeshReplica;
  beforeAll(async () => {
    mesh = await startInProcessMesh({ size: 2, policies: { q: { capacity: 100, refill: 1, per: "1h" } } });
    [a, b] = mesh.replicas as [MeshReplica, MeshReplica];
    await eventually(() => mesh.replicas.every((r) => r.server.mesh?.stats.connected.size === 1), 10_000, "connected");
  });
  afterAll(async () => {
    await mesh.close();
  });

  it("reports every writer's consumption, its node, and its lag", async () => {
    const bucket = { policy: "q", key: "shared" };
    await a.client.consume({ decisions: [{ buckets: [{ ...bucket, cost: 7 }] }] });
    await b.client.consume({ decisions: [{ buckets: [{ ...bucket, cost: 5 }] }, { buckets: [{ ...bucket, cost: 4 }] }] });
    await eventually(
      async () => (await a.client.query({ decisions: [{ buckets: [bucket] }] })).results[0]?.buckets[0]?.remaining === 84n,
      3_000,
      "a sees b's consumption",
    );
    const r = await a.client.query({ decisions: [{ buckets: [bucket] }], includeReplicas: true });
    const shares = r.results[0]?.buckets[0]?.replicas ?? [];
    const byNode = Object.fromEntries(shares.map((s) => [s.node, s]));
    expect(Object.keys(byNode).sort()).toEqual(["r1", "r2"]);
    expect(byNode.r1).toMatchObject({
      consumed: 7n,
      local: true,
      retired: false,
      lagUs: 0n,
      incarnation: a.server.mesh?.replica.incarnation,
    });
    expect(byNode.r2).toMatchObject({ consumed: 9n, local: false, retired: false, incarnation: b.server.mesh?.replica.incarnation });
    // Watermarks advance every flush (5 ms): the lag on loopback is well under a second.
    expect(byNode.r2?.lagUs).toBeLessThan(1_000_000n);
    // Without the flag, nothing extra is sent.
    const plain = await a.client.query({ decisions: [{ buckets: [bucket] }] });
    expect(plain.results[0]?.buckets[0]?.replicas).toEqual([]);
  });
});
