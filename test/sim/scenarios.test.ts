// The acceptance scenarios at reduced size (scale 0.2: 10-12 s of virtual time instead of 60 s),
// so the suite stays fast; `npm run sim` runs them at full size (and the rows marked simOnly). The same bounds apply. A failure
// prints the seed; replay with SIM_SEED=<seed> npx vitest run test/sim or npm run sim -- --seed.

import { describe, expect, it } from "vitest";
import { SCENARIOS } from "./scenarios.ts";

const SEED = Number(process.env.SIM_SEED ?? 1);
const SCALE = Number(process.env.SIM_SCALE ?? 0.2);

describe(`acceptance scenarios (seed ${SEED}, scale ${SCALE})`, () => {
  for (const s of SCENARIOS) {
    if (s.simOnly) continue;
    it(s.name, () => {
      const rows = s.run(SEED, SCALE);
      expect(rows.length).toBeGreaterThan(0);
      for (const r of rows) {
        expect(r.pass, `${r.scenario}: figure ${r.figure} ${r.unit}, bound ${r.bound} (${r.detail}); replay with SIM_SEED=${SEED}`).toBe(
          true,
        );
        expect(Number.isFinite(r.figure)).toBe(true);
      }
    }, 120_000);
  }
});
