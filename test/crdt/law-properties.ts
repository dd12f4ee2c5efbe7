// The lattice laws as fast-check properties, shared by the vitest suite and `npm run sim`
// (scenario "laws"). Each property returns false (or throws) on a violation.

import fc from "fast-check";
import * as crdt from "../../src/core/crdt/index.ts";
import { cloneKeyState, foldKey, joinKey, type KeyState, keyLevelAt, keyText, liveFloor, normalizeKey } from "../../src/core/crdt/index.ts";
import { stateOf } from "../support/replica-state.ts";
import { viaWire } from "../support/via-wire.ts";
import { runScript, scriptArb } from "./protocol-states.ts";

const triple = fc.tuple(scriptArb, fc.nat(), fc.nat(), fc.nat(), fc.integer({ min: 1, max: 9 }));

function pick(samples: readonly KeyState[], i: number): KeyState | undefined {
  return samples.length === 0 ? undefined : samples[i % samples.length];
}

export interface Law {
  readonly name: string;
  readonly property: fc.IRawProperty<unknown[]>;
}

function law<T extends unknown[]>(name: string, property: fc.IRawProperty<T>): Law {
  return { name, property: property as unknown as fc.IRawProperty<unknown[]> };
}

export const LAWS: readonly Law[] = [
  law(
    "join is commutative",
    fc.property(triple, ([script, i, j, , seed]) => {
      const { samples } = runScript(script, seed);
      const a = pick(samples, i);
      const b = pick(samples, j);
      return a === undefined || b === undefined || keyText(joinKey(a, b)) === keyText(joinKey(b, a));
    }),
  ),
  law(
    "join is associative",
    fc.property(triple, ([script, i, j, k, seed]) => {
      const { samples } = runScript(script, seed);
      const a = pick(samples, i);
      const b = pick(samples, j);
      const c = pick(samples, k);
      if (a === undefined || b === undefined || c === undefined) return true;
      return keyText(joinKey(joinKey(a, b), c)) === keyText(joinKey(a, joinKey(b, c)));
    }),
  ),
  law(
    "join is idempotent",
    fc.property(triple, ([script, i, , , seed]) => {
      const a = pick(runScript(script, seed).samples, i);
      return a === undefined || keyText(joinKey(a, a)) === keyText(a);
    }),
  ),
  law(
    "join(S, fold(S)) = fold(S) and level(fold(S), t) = level(S, t) for t >= the fold point",
    fc.property(triple, fc.nat(30_000), fc.nat(30_000), ([script, i, , , seed], ahead, later) => {
      const { samples, replicas } = runScript(script, seed);
      const s = pick(samples, i);
      if (s === undefined) return true;
      // Targets the protocol could choose: some replica's live floor, or a bit past it.
      const floors = replicas.map((r) => liveFloor(stateOf(r).reg) ?? 0);
      const target = Math.max(s.prefix.tau, (floors[i % 3] as number) + (ahead % 3 === 0 ? 0 : ahead));
      const f = foldKey(s, target);
      if (keyText(joinKey(s, f)) !== keyText(f)) return false;
      for (const t of [target, target + 1, target + later, target + 10 * later]) {
        const x = keyLevelAt(f, t);
        const y = keyLevelAt(s, t);
        if (x.level !== y.level || x.rate !== y.rate) return false;
      }
      return true;
    }),
  ),
  law(
    "the level is a function of the state: equal after a self-join and after the wire",
    fc.property(triple, fc.nat(50_000), ([script, i, , , seed], dt) => {
      const { samples, replicas, now } = runScript(script, seed);
      const s = pick(samples, i);
      if (s === undefined) return true;
      const t = Math.max(now, s.prefix.tau) + dt;
      if (keyLevelAt(joinKey(s, s), t).level !== keyLevelAt(s, t).level) return false;
      const r = replicas[i % 3];
      const k = r?.keyState("k");
      if (r === undefined || k === undefined) return true;
      const fresh = new crdt.Replica({
        node: "z",
        peers: [r.node],
        nowUs: now,
        randomHex: () => "f".repeat(18),
        warmupTimeoutUs: 0,
      });
      const d = r.deltaFor("z", now);
      if (d === undefined) return true;
      if (!fresh.applyDelta(viaWire(d), now).ok) return false;
      const copy = fresh.keyState("k");
      if (copy === undefined) return false;
      // The receiver applies its registry's horizon to what it joins; compare at the same horizon.
      const same = cloneKeyState(k as KeyState);
      same.horizon = Math.max(same.horizon, copy.horizon);
      normalizeKey(same);
      return keyText(copy) === keyText(same) && keyLevelAt(copy, t).level === keyLevelAt(k, t).level;
    }),
  ),
];
