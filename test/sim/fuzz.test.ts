// Randomised fault schedules (topology, loss, duplicates, jitter, skew, partitions, restarts,
// limit changes): every live replica converges after quiescence. FUZZ_SEEDS widens the sweep;
// `npx tsx test/sim/fuzz.ts N START` runs many more.

import { describe, expect, it } from "vitest";
import { fuzzOnce } from "./fuzz.ts";

const COUNT = Number(process.env.FUZZ_SEEDS ?? 12);

describe("convergence under random fault schedules", () => {
  for (let seed = 1; seed <= COUNT; seed++) {
    it(`seed ${seed}`, () => {
      const o = fuzzOnce(seed, 4);
      expect(o.ok, `${o.why}; replay: npx tsx test/sim/fuzz.ts 1 ${seed}`).toBe(true);
    });
  }
});
