// The bench's verdicts: a miss carries what bounds it, and a ratio to a figure at or below zero
// (added latency lost in the machine's noise) gives no verdict instead of a "pass".

import { describe, expect, it } from "vitest";
import { floorBound, withBound } from "../../bench/lib/bounds.ts";
import { ratioRow } from "../../bench/lib/report.ts";

const row = (value: number, baseline: number, op: ">=" | "<=", bound: number) =>
  ratioRow({ name: "r", unit: "us", value, baseline, baselineName: "b", bound: { op, bound }, note: "n", rounds: 3 });

describe("ratioRow", () => {
  it("passes and misses on the ratio", () => {
    expect(row(90, 100, "<=", 1).pass).toBe(true);
    expect(row(110, 100, "<=", 1).pass).toBe(false);
    expect(row(110, 100, ">=", 1).pass).toBe(true);
  });

  it("gives no verdict when the baseline is not above zero", () => {
    const r = row(3000, -72, "<=", 1);
    expect(r.pass).toBeNull();
    expect(r.ratio).toBeNull();
    expect(r.note).toMatch(/^NO VERDICT: the baseline came out -72.0 us/);
    expect(row(100, 0, "<=", 1).pass).toBeNull();
  });

  it("gives no verdict when the figure itself is below zero", () => {
    const r = row(-5, 200, "<=", 1);
    expect(r.pass).toBeNull();
    expect(r.note).toMatch(/^NO VERDICT: this figure came out -5.0 us/);
  });
});

describe("withBound", () => {
  it("puts the bound first on a miss, after the note otherwise", () => {
    expect(withBound(row(110, 100, "<=", 1), "X").note).toBe("MISS, bounded by: X; n");
    expect(withBound(row(90, 100, "<=", 1), "X").note).toBe("n; bound check: X");
  });
});

describe("floorBound", () => {
  const spec = { floorName: "F (long)", floorShort: "F", detail: "d" };
  it("says the floor alone misses a <= target", () => {
    const s = floorBound({ ...spec, floorRatio: 2, mineOverFloor: 1.5, bound: 1, higherIsBetter: false });
    expect(s).toBe("F (long) alone is 2.00x, past the 1x target, so no handler on it can meet it; tokenmesh is 1.50x F (d)");
  });
  it("says the rest is tokenmesh's when the floor meets a >= target", () => {
    const s = floorBound({ ...spec, floorRatio: 0.95, mineOverFloor: 0.8, bound: 0.9, higherIsBetter: true });
    expect(s).toMatch(/^F \(long\) alone is 0.95x, within the 0.9x target, so the rest is tokenmesh's own per-call work/);
  });
  it("reports no ratio rather than a verdict on a negative or infinite one", () => {
    expect(floorBound({ ...spec, floorRatio: -20, mineOverFloor: 2, bound: 1, higherIsBetter: false })).toBe(
      "F (long): no usable ratio in these rounds (d)",
    );
    expect(floorBound({ ...spec, floorRatio: 1, mineOverFloor: Number.POSITIVE_INFINITY, bound: 1, higherIsBetter: false })).toMatch(
      /no usable ratio/,
    );
  });
});
