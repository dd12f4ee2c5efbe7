// The p99-at-half-load row when tokenmesh's rounds fail: if the floor kept up at the same rate
// in alternating rounds, tokenmesh's own overload is a measured MISS; if the floor did not keep
// up either, the machine was the cause and the row stays "not measured".

import { describe, expect, it } from "vitest";
import type { Measurement } from "../../bench/lib/load.ts";
import type { Results, ScenarioContext } from "../../bench/lib/scenario.ts";
import { atRateId, saturateId } from "../../bench/scenarios/common.ts";
import { tailLatency } from "../../bench/scenarios/tail-latency.ts";

function run(o: { p99: number; failed?: number; late?: number; core?: number; calls?: number }): Measurement {
  const calls = o.calls ?? 3_000;
  return {
    driver: "node",
    verifiedBy: "server",
    sampled: { ok: 100, failed: {} },
    callsPerSecond: calls,
    latencyUs: { p50: o.p99 / 10, p90: o.p99 / 2, p99: o.p99, max: o.p99 * 2, count: calls * 8 },
    serverOk: calls * 10,
    serverErrors: o.failed ?? 0,
    serverCallsPerSecond: calls,
    clientFailures: {},
    cpuUsPerCall: 280,
    serviceCpuShare: o.core ?? 0.5,
    driverCpuS: 1,
    shed: 0,
    maxSendLagUs: 1_000,
    lateSendFraction: o.late ?? 0.01,
  };
}

function rows(results: Results) {
  const ctx = { results, log: () => {} } as unknown as ScenarioContext;
  const [row] = tailLatency.rows?.(ctx) ?? [];
  if (row === undefined) throw new Error("no row");
  return row;
}

const saturated = [run({ p99: 50_000, calls: 6_000 }), run({ p99: 50_000, calls: 6_200 }), run({ p99: 50_000, calls: 6_400 })];

describe("p99 at half max load", () => {
  it("is a MISS when tokenmesh fell behind where the floor kept up", () => {
    const results: Results = new Map([
      [saturateId("tokenmesh", 1), saturated],
      [
        atRateId("tokenmesh"),
        [
          run({ p99: 550_000, failed: 12, late: 0.07, core: 0.87 }),
          run({ p99: 1_100_000, failed: 4_352, late: 0.2, core: 0.91 }),
          run({ p99: 1_500_000, failed: 4_832, late: 0.3, core: 0.89 }),
        ],
      ],
      [atRateId("floor"), [run({ p99: 78_000, core: 0.68 }), run({ p99: 96_000, core: 0.65 }), run({ p99: 108_000, core: 0.7 })]],
      [atRateId("floor-nice"), [run({ p99: 67_000 }), run({ p99: 65_000 }), run({ p99: 70_000 })]],
    ]);
    const row = rows(results);
    expect(row.pass).toBe(false);
    expect(row.value).toBe(1_100_000);
    expect(row.ratio).toBeCloseTo(1_100_000 / 96_000);
    expect(row.note).toMatch(
      /tokenmesh fell behind at this rate while the floor.*kept up: tokenmesh's core 89% busy against the floor's 68%/,
    );
    expect(row.note).toMatch(/failed \(shed\) calls per round 12, 4352, 4832/);
  });

  it("stays not measured when the floor's rounds were dropped too", () => {
    const results: Results = new Map([
      [saturateId("tokenmesh", 1), saturated],
      [atRateId("tokenmesh"), [run({ p99: 550_000, late: 0.2 }), run({ p99: 1_100_000, late: 0.2 }), run({ p99: 1_500_000, late: 0.2 })]],
      [atRateId("floor"), [run({ p99: 78_000, late: 0.2 }), run({ p99: 96_000, late: 0.2 }), run({ p99: 108_000, late: 0.2 })]],
    ]);
    const row = rows(results);
    expect(row.pass).toBeNull();
    expect(row.note).toMatch(/^not measured: tokenmesh:fixed-rate:10k: no valid round/);
  });

  it("measures valid rounds as before", () => {
    const results: Results = new Map([
      [saturateId("tokenmesh", 1), saturated],
      [atRateId("tokenmesh"), [run({ p99: 120_000 }), run({ p99: 130_000 }), run({ p99: 125_000 })]],
      [atRateId("floor"), [run({ p99: 100_000 }), run({ p99: 100_000 }), run({ p99: 100_000 })]],
      [atRateId("floor-nice"), [run({ p99: 100_000 }), run({ p99: 100_000 }), run({ p99: 100_000 })]],
    ]);
    const row = rows(results);
    expect(row.pass).toBe(true);
    expect(row.value).toBe(125_000);
  });
});
