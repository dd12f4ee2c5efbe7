// policies.NAME.contention: share by default, local when asked, anything else refused with the
// field's path; and the mesh replica gets each policy's mode (src/mesh/replica-backend.ts).

import { describe, expect, it } from "vitest";
import { ConfigError, resolveConfig } from "../../src/config/load.ts";
import { Replica } from "../../src/core/crdt/index.ts";
import { bucketId } from "../../src/limiter/limiter.ts";
import { ReplicaBackend } from "../../src/mesh/replica-backend.ts";

const policies = {
  api: { capacity: 10, refill: 10, per: "1s" },
  batch: { capacity: 10, refill: 10, per: "1s", contention: "local" },
};

describe("policies.NAME.contention", () => {
  it("defaults to share; local when set", () => {
    const c = resolveConfig({ policies }, "test");
    expect(c.policies.get("api")?.contention).toBe("share");
    expect(c.policies.get("batch")?.contention).toBe("local");
  });

  it("refuses any other value, naming the field", () => {
    let caught: unknown;
    try {
      resolveConfig({ policies: { api: { ...policies.api, contention: "strict" } } }, "test");
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect(String((caught as Error).message)).toContain("policies.api.contention");
  });

  it("reaches the mesh replica per policy, and follows a reload", () => {
    const replica = new Replica({ node: "a", peers: [], nowUs: 1_000_000, randomHex: () => "0".repeat(18), contention: "share" });
    const backend = new ReplicaBackend(replica, 1000);
    const c = resolveConfig({ policies }, "test");
    backend.usePolicies(c.policies.values());
    expect(replica.contentionOf(bucketId("api", "k"))).toBe("share");
    expect(replica.contentionOf(bucketId("batch", "k"))).toBe("local");
    const next = resolveConfig({ policies: { ...policies, batch: { ...policies.batch, contention: "share" } } }, "test");
    backend.usePolicies(next.policies.values());
    expect(replica.contentionOf(bucketId("batch", "k"))).toBe("share");
  });
});
