// `mode: strict` in the config: the lease and bank resolve; a mesh without a named bank, inline
// limits, a bank on a local policy, a lease out of bounds and limits whose shares would not stay
// exact are refused, each with the field named.

import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.ts";

const mesh = { node: "a", peerListen: "127.0.0.1:7001", peers: ["127.0.0.1:7002"], insecure: true };
const strict = { capacity: 10, refill: 100, per: "1s", mode: "strict" };

function problems(raw: unknown): string {
  try {
    resolveConfig(raw, "test.yaml");
    return "";
  } catch (err) {
    return String(err);
  }
}

describe("config: mode strict", () => {
  it("resolves bank and lease (default 1s); a standalone replica needs no bank", () => {
    const c = resolveConfig({ mesh, policies: { s: { ...strict, bank: "a", lease: "250ms" } } }, "test.yaml");
    expect(c.policies.get("s")?.strict).toEqual({ bank: "a", leaseUs: 250_000 });
    const alone = resolveConfig({ policies: { s: strict } }, "test.yaml");
    expect(alone.policies.get("s")?.strict).toEqual({ leaseUs: 1_000_000 });
    expect(
      resolveConfig({ policies: { l: { capacity: 1, refill: 1, per: "1s" } } }, "test.yaml").policies.get("l")?.strict,
    ).toBeUndefined();
  });

  it("refuses what would let replicas disagree or shares drift", () => {
    expect(problems({ mesh, policies: { s: strict } })).toContain("policies.s.bank: mode strict in a mesh needs bank");
    expect(problems({ policies: { s: { ...strict, inline: { maxCapacity: 5, maxRefillPerSecond: 5 } } } })).toContain(
      "policies.s.inline: mode strict does not take inline limits",
    );
    expect(problems({ policies: { l: { capacity: 1, refill: 1, per: "1s", bank: "a" } } })).toContain(
      "policies.l.bank: bank is for mode strict only",
    );
    expect(problems({ policies: { s: { ...strict, lease: "5ms" } } })).toContain("policies.s.lease: must be between 10ms and 1h");
    expect(problems({ policies: { s: { ...strict, capacity: 1_000_000_000_000, refill: 1, per: "1ms" } } })).toContain(
      "policies.s.capacity",
    );
  });
});
