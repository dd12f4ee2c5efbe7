// The mesh backend at a reload that removes policies: it drops exactly the removed policies'
// buckets (inline-limit buckets included, Envoy buckets and look-alike names not), keeps
// ignoring a policy across later reloads until one adds it back, and never drops a name that is
// still in force (an Envoy rule's bucket policy may look like a policy name).

import { describe, expect, it } from "vitest";
import { Replica } from "../../src/core/crdt/index.ts";
import { makeRate, type Rate } from "../../src/core/rate.ts";
import { bucketId } from "../../src/limiter/limiter.ts";
import { ReplicaBackend } from "../../src/mesh/replica-backend.ts";

function rate(capacity: number): Rate {
  const made = makeRate({ capacity, refillTokens: 1, refillPeriodUs: 3_600_000_000 });
  if (!made.ok) throw new Error(made.error.message);
  return made.value;
}

describe("ReplicaBackend.forgetRemovedPolicies", () => {
  it("drops the removed policies' buckets only, and ignores them until a reload adds them back", () => {
    let n = 0;
    const replica = new Replica({ node: "a", peers: [], nowUs: 1_000_000, randomHex: () => (++n).toString(16).padStart(18, "0") });
    const backend = new ReplicaBackend(replica, 100);
    const now = 2_000_000;
    const ids = [
      bucketId("api", "k"), // the policy's own limit
      bucketId("api", "inline"), // an inline limit of the same policy: its bucket too
      bucketId("api2", "k"), // another policy whose name starts with "api"
      bucketId("rls:example.generic_key_demo", "k"), // an Envoy rule's bucket
    ];
    const limits = [rate(5), rate(7), rate(5), rate(5)];
    // Drain each bucket (what a consume of its whole capacity debits).
    for (const [i, id] of ids.entries()) {
      const limit = limits[i] as Rate;
      backend.access(id, limit, limit.capacity, now).debit(limit.capacityUnits);
    }
    expect(replica.keyCount).toBe(4);

    // The Envoy rule is still in force under a name a policy could have had: not dropped.
    const inForce = new Set(["api2", "rls:example.generic_key_demo"]);
    expect(backend.forgetRemovedPolicies(["api", "rls:example.generic_key_demo"], inForce)).toBe(2);
    expect(replica.keyState(ids[0] as string)).toBeUndefined();
    expect(replica.keyState(ids[1] as string)).toBeUndefined();
    expect(replica.keyState(ids[2] as string)).toBeDefined();
    expect(replica.keyState(ids[3] as string)).toBeDefined();
    expect(replica.ignoresKey(bucketId("api", "x"))).toBe(true);
    expect(replica.ignoresKey(bucketId("rls:example.generic_key_demo", "x"))).toBe(false);

    // A later reload that removes nothing keeps ignoring it; one that adds it back stops.
    backend.forgetRemovedPolicies([], inForce);
    expect(replica.ignoresKey(bucketId("api", "x"))).toBe(true);
    backend.forgetRemovedPolicies([], new Set([...inForce, "api"]));
    expect(replica.ignoresKey(bucketId("api", "x"))).toBe(false);
    // Back, and full: not the drained bucket.
    expect(backend.access(ids[0] as string, limits[0] as Rate, 1, now).level()).toBe((limits[0] as Rate).capacityUnits);
  });
});
