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
// The last two seeds also carry two strict keys (fuzz.ts, "strict-share"): convergence plus
// over-admission 0 over every window of each strict key's arrival log, in the time two share
// seeds took.
describe("convergence with share mode on", () => {
  for (let seed = 1; seed <= Math.min(COUNT, 6); seed++) {
    const strict = seed > 4;
    it(`seed ${seed}${strict ? " with strict keys" : ""}`, () => {
      const o = fuzzOnce(seed, 4, "share", strict);
      expect(o.ok, `${o.why}; replay: npx tsx test/sim/fuzz.ts 1 ${seed} ${strict ? "strict-share" : "share"}`).toBe(true);
      if (strict) expect(o.strictAdmitted ?? 0).toBeGreaterThan(0);
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
