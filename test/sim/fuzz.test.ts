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

// Share mode (share.ts) sends demand figures on key parts and admits from shares: the same
// schedules must converge and no honest delta (figures included) may be rejected.
describe("convergence with share mode on", () => {
  for (let seed = 1; seed <= Math.min(COUNT, 6); seed++) {
    it(`seed ${seed}`, () => {
      const o = fuzzOnce(seed, 4, "share");
      expect(o.ok, `${o.why}; replay: npx tsx test/sim/fuzz.ts 1 ${seed} share`).toBe(true);
    });
  }
});

// Seeds that once failed, at the length they failed at (the default run of fuzz.ts).
const REGRESSIONS: readonly { readonly seed: number; readonly found: string }[] = [
  { seed: 457, found: "a peer kept a folded prefix its writer had collected: two states, two levels" },
  { seed: 1668, found: "a peer kept an entry its writer had collected: two states" },
];

describe("fuzz regressions (docs/design.md, collection shrinks a state)", () => {
  for (const { seed, found } of REGRESSIONS) {
    it(`seed ${seed}: ${found}`, () => {
      const o = fuzzOnce(seed);
      expect(o.ok, `${o.why}; replay: npx tsx test/sim/fuzz.ts 1 ${seed}`).toBe(true);
    });
  }
});
