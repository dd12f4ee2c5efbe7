// The fold digest is replicated state and a tie-break of the prefix order: the fast versions
// must give exactly the value of its definition (FNV-1a 64 over the prefix text, top 48 bits).

import fc from "fast-check";
import { describe, it } from "vitest";
import { foldKey, liveFloor } from "../../src/core/crdt/index.ts";
import { digestOf, digestOfReference, type Prefix, prefixDigest, prefixText } from "../../src/core/crdt/key-state.ts";
import { stateOf } from "../support/replica-state.ts";
import { config } from "./mesh.ts";
import { runScript, scriptArb } from "./protocol-states.ts";

const edgeInts = fc.constantFrom(
  0,
  1,
  9,
  10,
  99_999_999,
  100_000_000,
  100_000_001,
  999_999_999_999_999,
  1e15,
  8_999_999_999_999_999,
  Number.MAX_SAFE_INTEGER,
);
const int = fc.oneof(
  fc.integer(),
  fc.integer({ min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
  edgeInts,
  edgeInts.map((n) => -n),
);
const id = fc.string({ minLength: 32, maxLength: 32, unit: fc.constantFrom(..."0123456789abcdef") });

describe("digest", () => {
  it("digestOf equals the BigInt definition on any text", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200, unit: "binary" }), (text) => digestOf(text) === digestOfReference(text)),
      { numRuns: 2_000 },
    );
  });

  it("prefixDigest equals the digest of the prefix text", () => {
    const cfg = config(7, 3, 5, 123);
    fc.assert(
      fc.property(
        int,
        int,
        int,
        int,
        int,
        int,
        fc.array(fc.tuple(id, int), { maxLength: 5 }),
        (tau, level, sumF, digest, late, forgiven, F) => {
          const p: Prefix = { tau, level, config: cfg, F: new Map(F), sumF, digest, lateCharged: late, forgiven };
          return prefixDigest(p) === digestOfReference(prefixText(p));
        },
      ),
      { numRuns: 5_000 },
    );
  });

  it("a fold's (lazy) digest is the digest of its prefix text with digest 0", () => {
    fc.assert(
      fc.property(scriptArb, fc.nat(), fc.nat(20_000), (script, i, ahead) => {
        const { samples, replicas } = runScript(script, 3);
        const s = samples[i % Math.max(1, samples.length)];
        if (s === undefined) return true;
        const target = Math.max(s.prefix.tau + 1, (liveFloor(stateOf(replicas[0] as (typeof replicas)[0]).reg) ?? 0) + ahead);
        const p = foldKey(s, target).prefix;
        return p.digest === digestOfReference(prefixText({ ...p, digest: 0, F: p.F, tau: p.tau, level: p.level, config: p.config }));
      }),
      { numRuns: 300 },
    );
  });
});
