// The window-excess measure used by the restart tests: zero for what one ideal bucket admits,
// the overshoot for a burst above it, and never more than the log proves when answers are late.

import { describe, expect, it } from "vitest";
import { type Admission, windowExcess } from "../support/window-excess.ts";

const at = (ms: number, latency = 0): Admission => ({ sentMs: ms, receivedMs: ms + latency });

describe("window excess", () => {
  it("is 0 for an ideal bucket: a burst of C, then one every 1/r", () => {
    const log = [...Array.from({ length: 10 }, () => at(1_000)), ...Array.from({ length: 50 }, (_, i) => at(1_100 + 100 * i))];
    expect(windowExcess(log, 10, 10).excess).toBeCloseTo(0, 9);
  });

  it("is the overshoot of a burst above C", () => {
    const r = windowExcess(
      Array.from({ length: 15 }, () => at(5_000)),
      10,
      10,
    );
    expect(r).toMatchObject({ excess: 5, admitted: 15, fromMs: 5_000, toMs: 5_000 });
  });

  it("counts only admissions certainly inside the window when answers take time", () => {
    // 15 admissions sent together, each answered 200 ms later: the window must span 200 ms.
    const r = windowExcess(
      Array.from({ length: 15 }, () => at(5_000, 200)),
      10,
      10,
    );
    expect(r.excess).toBeCloseTo(3, 9); // 15 - 10 - 10 * 0.2
  });

  it("finds the worst window inside a long log", () => {
    // One every 1/r leaves the bucket full; 8 more at once still fit (the worst window is 1
    // under); 12 more overshoot by 3 (the window from the tick before to the tick after).
    const steady = Array.from({ length: 100 }, (_, i) => at(1_000 + 100 * i));
    expect(windowExcess([...steady, ...Array.from({ length: 8 }, () => at(6_050))], 10, 10).excess).toBeCloseTo(-1, 9);
    expect(windowExcess([...steady, ...Array.from({ length: 12 }, () => at(6_050))], 10, 10).excess).toBeCloseTo(3, 9);
  });
});
