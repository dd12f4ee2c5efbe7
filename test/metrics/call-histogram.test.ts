// The hot-path histogram renders exactly what prom-client's own Histogram renders for the same
// observations: same lines, same order, same values (bucket edges, values over the last bound,
// several series, zeroed series). Also the JSON form, and refusals of bad label sets.

import { Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { CallHistogram } from "../../src/metrics/call-histogram.ts";

const BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1];
const LABELS = ["grpc_service", "grpc_method", "grpc_code"] as const;
type Label = (typeof LABELS)[number];

function both() {
  const ours = new Registry();
  const theirs = new Registry();
  const config = { name: "t_request_duration_seconds", help: "Handler time.", labelNames: LABELS, buckets: BUCKETS };
  return {
    ours,
    theirs,
    hot: new CallHistogram<Label>({ ...config, registry: ours }),
    reference: new Histogram<Label>({ ...config, registers: [theirs] }),
  };
}

describe("CallHistogram", () => {
  it("renders the same exposition and JSON as prom-client's Histogram", async () => {
    const { ours, theirs, hot, reference } = both();
    const ok = { grpc_service: "tokenmesh.v1.RateLimiter", grpc_method: "Consume", grpc_code: "OK" };
    const bad = { ...ok, grpc_code: "INVALID_ARGUMENT" };
    const idle = { ...ok, grpc_method: "Query" };
    hot.zero(idle);
    reference.zero(idle);
    // Edges (a value equal to a bound is in that bucket), between bounds, past the last bound.
    const values = [0, 0.00005, 0.00005000001, 0.0003, 0.001, 0.09, 0.1, 0.5, 12, 1e-9];
    const okSeries = hot.series(ok);
    for (const v of values) {
      okSeries.observe(v);
      reference.observe(ok, v);
    }
    hot.series(bad).observe(0.002);
    reference.observe(bad, 0.002);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    // As JSON (prom-client's values also carry `exemplar: undefined`, which JSON drops).
    const json = async (r: Registry): Promise<unknown> => JSON.parse(JSON.stringify(await r.getMetricsAsJSON()));
    expect(await json(ours)).toEqual(await json(theirs));
    // The same series for the same labels, whatever their order.
    expect(hot.series({ grpc_code: "OK", grpc_method: "Consume", grpc_service: "tokenmesh.v1.RateLimiter" })).toBe(okSeries);
  });

  it("does not count a value that is not a finite number", async () => {
    const { ours, hot } = both();
    const s = hot.series({ grpc_service: "s", grpc_method: "m", grpc_code: "OK" });
    s.observe(Number.NaN);
    s.observe(Number.POSITIVE_INFINITY);
    expect(s.count).toBe(0);
    expect(await ours.metrics()).toContain('t_request_duration_seconds_count{grpc_service="s",grpc_method="m",grpc_code="OK"} 0');
  });

  it("refuses a label set with a missing or unknown label, naming it", () => {
    const { hot } = both();
    expect(() => hot.series({ grpc_service: "s", grpc_method: "m" } as Record<Label, string>)).toThrow(/label grpc_code is missing/);
    expect(() => hot.series({ grpc_service: "s", grpc_method: "m", grpc_code: "OK", peer: "x" } as Record<Label, string>)).toThrow(
      /unknown label peer/,
    );
  });

  it("refuses buckets that are not ascending", () => {
    expect(() => new CallHistogram({ name: "x", help: "x", labelNames: [], buckets: [1, 1], registry: new Registry() })).toThrow(
      /buckets must be ascending/,
    );
  });
});
