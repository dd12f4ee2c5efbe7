// The standalone policy snapshot a reload builds (src/config/policy-schedule.ts), case by case:
// which limit is in force at which time, and the switch each policy carries for the store.

import { describe, expect, it } from "vitest";
import { type Policy, resolveConfig } from "../../src/config/load.ts";
import { scheduledSnapshot } from "../../src/config/policy-schedule.ts";

const T0 = 1_800_000_000_000_000;
const iso = (us: number) => new Date(us / 1000).toISOString();
const config = (policies: Record<string, Record<string, unknown>>) =>
  resolveConfig({ listen: "127.0.0.1:0", metricsListen: null, httpListen: null, dataDir: null, policies }, "test");
const capacityOf = (m: ReadonlyMap<string, Policy>, name: string) => m.get(name)?.rate.capacity;

describe("scheduledSnapshot", () => {
  const v1 = config({ api: { capacity: 10, refill: 10, per: "1s", version: 1 }, other: { capacity: 3, refill: 1, per: "1s" } });

  it("keeps the old limit until effectiveAt; switches at once without one, or with one past", () => {
    const next = config({
      api: { capacity: 4, refill: 40, per: "1s", version: 2, effectiveAt: iso(T0 + 5e6) },
      other: { capacity: 6, refill: 1, per: "1s", version: 1, effectiveAt: iso(T0 - 5e6) },
      added: { capacity: 7, refill: 1, per: "1s", effectiveAt: iso(T0 + 5e6) },
    });
    const s = scheduledSnapshot(v1.policies, next, T0);
    const before = s.policiesAt(T0 + 5e6 - 1);
    expect([capacityOf(before, "api"), capacityOf(before, "other"), capacityOf(before, "added")]).toEqual([10, 6, 7]);
    expect(before.get("other")?.change).toEqual({ from: v1.policies.get("other")?.rate, atUs: T0 });
    expect(before.get("added")?.change).toBeUndefined(); // nothing to switch from
    const at = s.policiesAt(T0 + 5e6);
    expect(capacityOf(at, "api")).toBe(4);
    expect(at.get("api")?.change).toEqual({ from: v1.policies.get("api")?.rate, atUs: T0 + 5e6 });
  });

  it("a reload before the effective time switches from the limit in force then, not the pending one", () => {
    const v2 = config({ api: { capacity: 4, refill: 40, per: "1s", version: 2, effectiveAt: iso(T0 + 5e6) } });
    const pending = scheduledSnapshot(v1.policies, v2, T0);
    const v3 = config({ api: { capacity: 20, refill: 5, per: "1s", version: 3, effectiveAt: iso(T0 + 9e6) } });
    const s = scheduledSnapshot(pending.policiesAt(T0 + 1e6), v3, T0 + 1e6);
    expect(capacityOf(s.policiesAt(T0 + 6e6), "api")).toBe(10); // v2's time passed: v1 still holds
    expect(s.policiesAt(T0 + 9e6).get("api")?.change).toEqual({ from: v1.policies.get("api")?.rate, atUs: T0 + 9e6 });
  });

  it("the same limit under a new version switches nothing and keeps the switch it came by", () => {
    const v2 = config({ api: { capacity: 4, refill: 40, per: "1s", version: 2 } });
    const switched = scheduledSnapshot(v1.policies, v2, T0).policiesAt(T0);
    const v3 = config({ api: { capacity: 4, refill: 40, per: "1s", version: 3 } });
    const again = scheduledSnapshot(switched, v3, T0 + 1e6)
      .policiesAt(T0 + 1e6)
      .get("api");
    expect(again?.version).toBe(3);
    expect(again?.change).toEqual({ from: v1.policies.get("api")?.rate, atUs: T0 });
  });

  it("several pending switches apply each at its own time", () => {
    const next = config({
      api: { capacity: 4, refill: 40, per: "1s", version: 2, effectiveAt: iso(T0 + 2e6) },
      other: { capacity: 9, refill: 1, per: "1s", version: 1, effectiveAt: iso(T0 + 4e6) },
    });
    const s = scheduledSnapshot(v1.policies, next, T0);
    const at = (t: number) => [capacityOf(s.policiesAt(t), "api"), capacityOf(s.policiesAt(t), "other")];
    expect([at(T0), at(T0 + 2e6), at(T0 + 4e6)]).toEqual([
      [10, 3],
      [4, 3],
      [4, 9],
    ]);
  });
});
