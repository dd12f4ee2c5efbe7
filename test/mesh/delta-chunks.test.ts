// Large deltas travel as several messages: all but the last carry key data only under an empty
// interval, the last carries the watermarks and the real interval; and a mesh with a small
// message cap still replicates a burst over thousands of keys.

import { describe, expect, it } from "vitest";
import { type Delta, type KeyDelta, makeKeyConfig } from "../../src/core/crdt/index.ts";
import { encodeInChunks } from "../../src/mesh/delta-chunks.ts";
import { eventually, type MeshReplica, startInProcessMesh } from "../support/mesh.ts";

const made = makeKeyConfig({ capacity: 10, refillTokens: 1, refillPeriodUs: 1_000_000 });
if (!made.ok) throw new Error(made.error.message);
const limit = made.value;
const key = (i: number): KeyDelta => ({
  key: `api\u0000k${i}`,
  limit,
  prefix: { tauUs: 0, level: 10_000_000, limit, folded: [], foldedSum: 0, digest: 0, lateCharged: 0, forgiven: 0 },
  known: [],
  entries: [[0, 1_000 + i, 0, 1]],
  horizonUs: 0,
  partial: false,
});

describe("encodeInChunks", () => {
  it("keeps every key, in order, and lets only the last chunk claim the interval", () => {
    const delta: Delta = {
      node: "a",
      incarnation: "0660e96f10d5b45e75258949e88b4509",
      fromSeq: 7,
      toSeq: 19,
      sentAtUs: 5_000,
      horizonUs: 0,
      incarnations: ["0660e96f10d5b45e75258949e88b4509"],
      records: [[0, 4_000, -1]],
      keys: Array.from({ length: 1_000 }, (_, i) => key(i)),
    };
    const seen: Delta[] = [];
    const encode = (d: Delta) => {
      seen.push(d);
      return new TextEncoder().encode(JSON.stringify(d));
    };
    const chunks = encodeInChunks(delta, { maxBytes: 20_000, maxKeys: 300 }, encode);
    const sent = chunks.map((c) => JSON.parse(new TextDecoder().decode(c)) as Delta);
    expect(sent.length).toBeGreaterThan(1);
    for (const c of chunks) expect(c.length).toBeLessThanOrEqual(20_000);
    for (const c of sent) expect(c.keys.length).toBeLessThanOrEqual(300);
    expect(sent.flatMap((c) => c.keys.map((k) => k.key))).toEqual(delta.keys.map((k) => k.key));
    for (const c of sent.slice(0, -1)) expect(c).toMatchObject({ fromSeq: 7, toSeq: 7, records: [] });
    expect(sent.at(-1)).toMatchObject({ fromSeq: 7, toSeq: 19, records: [[0, 4_000, -1]] });
  });
});

describe("a mesh with a small message cap", () => {
  it("replicates a burst over 3,000 keys", async () => {
    const mesh = await startInProcessMesh({
      size: 2,
      policies: { api: { capacity: 10, refill: 1, per: "1h" } },
      mesh: () => ({ maxMessageBytes: 65536 }),
    });
    try {
      const [a, b] = mesh.replicas as [MeshReplica, MeshReplica];
      await eventually(() => mesh.replicas.every((r) => r.server.mesh?.stats.connected.size === 1), 10_000, "connected");
      for (let batch = 0; batch < 3; batch++) {
        await a.client.consume({
          decisions: Array.from({ length: 1_000 }, (_, i) => ({
            buckets: [{ policy: "api", key: `burst-${batch * 1_000 + i}`, cost: 3 }],
          })),
        });
      }
      const sample = [0, 1, 999, 1_000, 2_998, 2_999];
      await eventually(
        async () => {
          const r = await b.client.query({ decisions: sample.map((i) => ({ buckets: [{ policy: "api", key: `burst-${i}` }] })) });
          return r.results.every((x) => x.buckets[0]?.remaining === 7n);
        },
        10_000,
        "b holds a's 3,000 keys",
      );
      expect(a.server.mesh?.stats.peer("r2").deltasSent).toBeGreaterThan(3);
      expect(b.server.mesh?.stats.rejected.size).toBe(0);
    } finally {
      await mesh.close();
    }
  }, 30_000);
});
