// A rolling upgrade across one protocol version keeps the mesh connected: a new build (speaks
// 1..2) and an old one (1..1) agree on 1 and replicate; a build two versions ahead (2..3) is
// refused by the old one with a status naming both ranges, and counted. Between old and new, key
// parts always carry their header (protocol 1); between the new builds they may leave it out.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, type InProcessMesh, type MeshReplica, startInProcessMesh } from "../support/mesh.ts";

describe("rolling upgrade", () => {
  let mesh: InProcessMesh;
  beforeAll(async () => {
    const ranges = [
      { min: 1, max: 1 }, // old build
      { min: 1, max: 2 }, // new build
      { min: 2, max: 3 }, // two versions ahead of the old build
    ];
    // Local contention: the test is about what goes on the wire, and share mode's probe would
    // admit only a third of the bucket to a key's first burst.
    mesh = await startInProcessMesh({
      size: 3,
      policies: { api: { capacity: 10, refill: 1, per: "1h", contention: "local" } },
      versions: (i) => ranges[i],
    });
  });
  afterAll(async () => {
    await mesh.close();
  });

  it("connects old and new builds, and refuses a build two versions apart", async () => {
    const [oldBuild, newBuild, ahead] = mesh.replicas as [MeshReplica, MeshReplica, MeshReplica];
    const linkTo = (from: MeshReplica, to: MeshReplica) => from.server.mesh?.links().find((l) => l.address === to.peerAddress);
    await eventually(
      () => linkTo(oldBuild, newBuild)?.peer?.version === 1 && linkTo(newBuild, oldBuild)?.peer?.version === 1,
      10_000,
      "old and new connected on 1",
    );
    await eventually(() => linkTo(newBuild, ahead)?.peer?.version === 2, 10_000, "new and ahead connected on 2");
    await newBuild.client.consume({ decisions: [{ buckets: [{ policy: "api", key: "u", cost: 4 }] }] });
    await eventually(
      async () =>
        (await oldBuild.client.query({ decisions: [{ buckets: [{ policy: "api", key: "u" }] }] })).results[0]?.buckets[0]?.remaining === 6n,
      5_000,
      "the old build sees the new build's consumption",
    );
    // The old build and the one two versions ahead never connect, and both count the refusal.
    expect(linkTo(oldBuild, ahead)?.peer).toBeUndefined();
    expect(linkTo(ahead, oldBuild)?.peer).toBeUndefined();
    await eventually(() => (oldBuild.server.mesh?.stats.rejected.get("handshake") ?? 0) >= 1, 5_000, "refusal counted");
  });

  it("sends the old build whole key parts only, while the new builds may leave headers out", async () => {
    const [oldBuild, newBuild, ahead] = mesh.replicas as [MeshReplica, MeshReplica, MeshReplica];
    // The same key again and again, each use after the last one's ack: on the protocol 2 link
    // (new -> ahead) its header goes once; on the protocol 1 link (new -> old) a part without
    // it would be refused by the old build as invalid.
    for (let i = 1; i <= 5; i++) {
      await newBuild.client.consume({ decisions: [{ buckets: [{ policy: "api", key: "again", cost: 1 }] }] });
      await eventually(
        async () =>
          (await oldBuild.client.query({ decisions: [{ buckets: [{ policy: "api", key: "again" }] }] })).results[0]?.buckets[0]
            ?.remaining === BigInt(10 - i),
        5_000,
        `the old build sees use ${i}`,
      );
    }
    await eventually(
      async () =>
        (await ahead.client.query({ decisions: [{ buckets: [{ policy: "api", key: "again" }] }] })).results[0]?.buckets[0]?.remaining ===
        5n,
      5_000,
      "the build ahead sees all five",
    );
    expect(oldBuild.server.mesh?.stats.rejected.get("invalid_delta") ?? 0).toBe(0);
    expect(ahead.server.mesh?.stats.rejected.get("invalid_delta") ?? 0).toBe(0);
  });
});
