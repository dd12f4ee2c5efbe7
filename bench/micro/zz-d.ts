import fc from "fast-check";
import { makeKeyConfig } from "../../src/core/crdt/index.ts";
import { digestOf, type Prefix, prefixDigest, prefixText } from "../../src/core/crdt/key-state.ts";

const cfg = makeKeyConfig({ capacity: 7, refillTokens: 3, refillPeriodUs: 1000 }, 5, 123);
if (!cfg.ok) throw 0;
const int = fc.oneof(
  fc.integer(),
  fc.maxSafeInteger(),
  fc.constantFrom(0, 99999999, 100000000, 100000001, 9007199254740991, -9007199254740991, 1e15, 1e15 - 1, 8999999999999999),
  fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }),
);
fc.assert(
  fc.property(
    int,
    int,
    int,
    int,
    int,
    int,
    fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 32 }), int), { maxLength: 4 }),
    (tau, level, sumF, digest, late, forg, F) => {
      const p: Prefix = { tau, level, config: cfg.config, F: new Map(F), sumF, digest, lateCharged: late, forgiven: forg };
      return prefixDigest(p) === digestOf(prefixText(p));
    },
  ),
  { numRuns: 20000 },
);
console.log("ok");
