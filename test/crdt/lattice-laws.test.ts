// The lattice laws of the key state, on protocol-generated states (design notes, section 3 and
// acceptance "Laws"): join commutative, associative, idempotent; join(S, fold(S)) = fold(S);
// level(fold(S), t) = level(S, t) for t at or after the fold point; the level is a function of
// the state alone (equal states, and a state sent over the wire, answer equally).

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cloneKeyState, foldKey, joinKey, type KeyState, keyText, levelAt, liveFloor, normalizeKey } from "../../src/core/crdt/index.ts";
import { runScript, scriptArb } from "./protocol-states.ts";

const RUNS = Number(process.env.LAW_RUNS ?? 150);

/** Three samples picked by index from one protocol run. */
const triple = fc.tuple(scriptArb, fc.nat(), fc.nat(), fc.nat(), fc.integer({ min: 1, max: 9 }));

function pick(samples: readonly KeyState[], i: number): KeyState | undefined {
  return samples.length === 0 ? undefined : samples[i % samples.length];
}

describe("key-state lattice laws (protocol-generated states)", () => {
  it("join is commutative", () => {
    fc.assert(
      fc.property(triple, ([script, i, j, , seed]) => {
        const { samples } = runScript(script, seed);
        const a = pick(samples, i);
        const b = pick(samples, j);
        if (a === undefined || b === undefined) return;
        expect(keyText(joinKey(a, b))).toBe(keyText(joinKey(b, a)));
      }),
      { numRuns: RUNS },
    );
  });

  it("join is associative", () => {
    fc.assert(
      fc.property(triple, ([script, i, j, k, seed]) => {
        const { samples } = runScript(script, seed);
        const a = pick(samples, i);
        const b = pick(samples, j);
        const c = pick(samples, k);
        if (a === undefined || b === undefined || c === undefined) return;
        expect(keyText(joinKey(joinKey(a, b), c))).toBe(keyText(joinKey(a, joinKey(b, c))));
      }),
      { numRuns: RUNS },
    );
  });

  it("join is idempotent", () => {
    fc.assert(
      fc.property(triple, ([script, i, , , seed]) => {
        const { samples } = runScript(script, seed);
        const a = pick(samples, i);
        if (a === undefined) return;
        expect(keyText(joinKey(a, a))).toBe(keyText(a));
      }),
      { numRuns: RUNS },
    );
  });

  it("join(S, fold(S)) = fold(S) and level(fold(S), t) = level(S, t) for t >= the fold point", () => {
    fc.assert(
      fc.property(triple, fc.nat(30_000), fc.nat(30_000), ([script, i, , , seed], ahead, later) => {
        const { samples, replicas } = runScript(script, seed);
        const s = pick(samples, i);
        if (s === undefined) return;
        // Fold targets the protocol could choose: the live floor of some replica, or a bit past tau.
        const floors = replicas.map((r) => liveFloor(r.s.reg) ?? 0);
        const target = Math.max(s.prefix.tau, (floors[i % 3] as number) + (ahead % 3 === 0 ? 0 : ahead));
        const f = foldKey(s, target);
        expect(keyText(joinKey(s, f))).toBe(keyText(f));
        for (const t of [target, target + 1, target + later, target + 10 * later]) {
          expect(levelAt(f, t)).toEqual(levelAt(s, t));
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("equal states answer equally: the level survives the wire and a join with itself", () => {
    fc.assert(
      fc.property(triple, fc.nat(50_000), ([script, i, , , seed], dt) => {
        const { samples, replicas, now } = runScript(script, seed);
        const s = pick(samples, i);
        if (s === undefined) return;
        const t = Math.max(now, s.prefix.tau) + dt;
        expect(levelAt(joinKey(s, s), t)).toEqual(levelAt(s, t));
        // Through a real delta from a replica to a fresh peer: same text, same level.
        const r = replicas[i % 3];
        const k = r?.keyState("k");
        if (r === undefined || k === undefined) return;
        const { Replica } = require_();
        const fresh = new Replica({ node: "z", peers: [r.s.opts.node], nowUs: now, randomHex: () => "f".repeat(18), warmupTimeoutUs: 0 });
        const d = r.deltaFor("z", now);
        if (d === undefined) return;
        expect(fresh.applyDelta(JSON.parse(JSON.stringify(d)), now).ok).toBe(true);
        const copy = fresh.keyState("k");
        // The receiver applies its registry's horizon to what it joins; compare at the same horizon.
        const same = cloneKeyState(k as KeyState);
        same.horizon = Math.max(same.horizon, copy?.horizon ?? 0);
        normalizeKey(same);
        expect(copy && keyText(copy)).toBe(keyText(same));
        expect(copy && levelAt(copy, t)).toEqual(levelAt(k, t));
      }),
      { numRuns: RUNS },
    );
  });
});

import * as crdt from "../../src/core/crdt/index.ts";
function require_(): typeof crdt {
  return crdt;
}
