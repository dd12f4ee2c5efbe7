// The lattice laws of the key state on protocol-generated states (docs/design.md, property 2 and
// the acceptance rows "laws"): join commutative, associative, idempotent; join(S, fold(S)) = fold(S);
// level(fold(S), t) = level(S, t) for t at or after the fold point; the level is a function of
// the state alone. LAW_RUNS raises the number of runs (npm run sim uses more).

import fc from "fast-check";
import { describe, it } from "vitest";
import { LAWS } from "./law-properties.ts";

const RUNS = Number(process.env.LAW_RUNS ?? 200);

describe("key-state lattice laws (protocol-generated states)", () => {
  for (const law of LAWS) {
    it(law.name, () => {
      fc.assert(law.property, { numRuns: RUNS });
    });
  }
});
