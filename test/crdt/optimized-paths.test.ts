// The replica computes levels from a cached walk, extracts deltas from a change list, and folds
// and collects only keys that changed or fell due (docs/crdt.md, "Performance"). These tests
// drive real replicas through the protocol (loss, duplicates, reordering, resends, restarts,
// limit changes, evictions, a skewed clock) and compare every answer with the straightforward
// computation: a full walk, a scan of every key and entry, a scan of every key after a tick.

import { describe, expect, it } from "vitest";
import type { Delta, KeyConfig, Replica } from "../../src/core/crdt/index.ts";
import { decide } from "../../src/core/decision.ts";
import { Prng } from "../sim/prng.ts";
import { stateOf } from "../support/replica-state.ts";
import { viaWire } from "../support/via-wire.ts";
import { config, Mesh } from "./mesh.ts";
import { changeListProblems, leftoverTickWork, referenceDeltaKeys, referenceLevel, sentDeltaKeys } from "./reference-paths.ts";

const NAMES = ["a", "b", "c"];
const KEYS = ["k0", "k1", "k2", "k3", "k4"];

function run(seed: number, steps: number): void {
  const rng = new Prng(seed);
  const slotWidthUs = [0, 1_000, 5_000][rng.int(0, 2)] as number;
  const clockSync = rng.chance(0.5);
  const m = new Mesh(NAMES, {
    slotWidthUs,
    retireAfterUs: 40_000,
    forgetAfterUs: 60_000,
    resendAfterUs: 5_000,
    relay: rng.chance(0.7),
    clockSync,
  });
  // Without clock sync, c stamps 3 ms ahead: others see its entries in their future.
  if (!clockSync) m.boot("c", 3_000);
  const skew = (name: string): number => (name === "c" && !clockSync ? 3_000 : 0);
  const cfg = new Map<string, KeyConfig>(NAMES.map((n) => [n, config(rng.int(5, 20), 1000)]));
  let version = 0;
  const inFlight: { to: string; d: Delta }[] = [];
  const raw = (name: string): number => m.now + skew(name);
  const where = (what: string): string => `seed ${seed}: ${what}`;

  for (let step = 0; step < steps; step++) {
    const name = NAMES[rng.int(0, 2)] as string;
    const r: Replica = m.get(name);
    const c = cfg.get(name) as KeyConfig;
    const op = rng.int(0, 99);
    if (op < 35) {
      m.now += rng.int(0, 2_500);
      // One or two buckets, sometimes the same key twice in one decision.
      const keys = rng.chance(0.3) ? [KEYS[rng.int(0, 4)] as string, KEYS[rng.int(0, 4)] as string] : [KEYS[rng.int(0, 4)] as string];
      const accesses = keys.map((key) => {
        const a = r.access(key, c, rng.int(1, 4), raw(name));
        const want = referenceLevel(r, key, c, raw(name));
        expect(a.level(), where(`level of ${key} at ${name}`)).toBe(r.ready ? want : Math.min(0, want));
        return a;
      });
      decide(accesses, rng.chance(0.9));
    } else if (op < 50) {
      m.now += rng.int(0, 8_000);
      r.tick(raw(name));
      expect(leftoverTickWork(r, raw(name)), where(`tick at ${name}`)).toEqual([]);
    } else if (op < 65) {
      const to = NAMES[rng.int(0, 2)] as string;
      if (to === name) continue;
      const d = r.deltaFor(to, raw(name));
      if (d === undefined) continue;
      expect(sentDeltaKeys(d), where(`delta ${name}->${to} from ${d.fromSeq}`)).toEqual(referenceDeltaKeys(r, to, d));
      inFlight.push({ to, d });
    } else if (op < 82) {
      if (inFlight.length === 0) continue;
      const i = rng.int(0, inFlight.length - 1);
      const msg = inFlight[i] as { to: string; d: Delta };
      if (!rng.chance(0.2)) inFlight.splice(i, 1); // else delivered again later
      if (rng.chance(0.15)) continue; // lost
      const res = m.get(msg.to).applyDelta(viaWire(msg.d), raw(msg.to));
      if (res.ok && rng.chance(0.85)) m.get(msg.d.node).applyAck(res.value, raw(msg.d.node));
    } else if (op < 90) {
      const key = KEYS[rng.int(0, 4)] as string;
      const got = r.level(key, c, raw(name)).level;
      expect(got, where(`level() of ${key} at ${name}`)).toBe(referenceLevel(r, key, c, raw(name)));
    } else if (op < 93) {
      version += 1;
      cfg.set(name, config(rng.int(5, 20), 1000, version, Math.max(0, r.stamp(raw(name)) + rng.int(-5_000, 5_000))));
    } else if (op < 96) {
      r.dropKey(KEYS[rng.int(0, 4)] as string, raw(name));
    } else if (op < 98) {
      // What src/mesh/replica-backend.ts did before dropKey: delete from the map directly.
      const key = KEYS[rng.int(0, 4)] as string;
      stateOf(r).keys.delete(key);
      stateOf(r).open.delete(key);
    } else if (rng.chance(0.5)) {
      m.boot(name, skew(name));
    }
    for (const n of NAMES) expect(changeListProblems(m.get(n)), where(`change list of ${n} after step ${step}`)).toEqual([]);
  }
}

describe("optimized paths agree with the straightforward ones", () => {
  it("on random protocol runs (levels, delta-intervals, tick work)", () => {
    for (let seed = 1; seed <= 60; seed++) run(seed, 600);
  });
});

describe("level cache", () => {
  it("drops the cache when an own entry lands before a replayed peer entry at the same stamp", () => {
    const m = new Mesh(["a", "b"]);
    m.round(1_000);
    m.round(1_000);
    const [a, b] = [m.get("a"), m.get("b")];
    expect(a.incarnation < b.incarnation).toBe(true); // b's entry sorts after a's at one stamp
    const cfg = config();
    b.consume("k", cfg, 2, m.now);
    m.deliver(m.delta("b", "a"), "a");
    expect(a.keyState("k")?.entries[0]?.slot).toBe(a.stamp(m.now));
    expect(a.level("k", cfg, m.now).level).toBe(referenceLevel(a, "k", cfg, m.now)); // b's entry replayed
    a.consume("k", cfg, 3, m.now); // inserted before it
    expect(a.level("k", cfg, m.now).level).toBe(referenceLevel(a, "k", cfg, m.now));
  });

  it("drops the cache when an own open entry grows after a later peer entry was replayed", () => {
    const m = new Mesh(["a", "b"], { slotWidthUs: 5_000 });
    m.round(1_000);
    m.round(1_000);
    const [a, b] = [m.get("a"), m.get("b")];
    const cfg = config();
    a.consume("k", cfg, 1, m.now); // opens a's slot
    m.now += 1_000;
    b.consume("k", cfg, 2, m.now);
    m.deliver(m.delta("b", "a"), "a");
    m.now += 1_000;
    a.consume("k", cfg, 3, m.now); // same open slot: grows the entry before b's
    expect(a.keyState("k")?.entries.length).toBe(2);
    expect(a.level("k", cfg, m.now).level).toBe(referenceLevel(a, "k", cfg, m.now));
  });
});

describe("change list", () => {
  it("a resend from the last ack carries every key changed since the ack", () => {
    const m = new Mesh(["a", "b"], { resendAfterUs: 50_000 });
    m.round(1_000);
    m.round(1_000);
    const a = m.get("a");
    const cfg = config();
    a.consume("early", cfg, 1, m.now);
    m.deliver(m.delta("a", "b"), "b"); // acknowledged
    const changed: string[] = [];
    for (let i = 0; i < 6; i++) {
      m.now += 5_000;
      const key = `lost${i}`;
      changed.push(key);
      a.consume(key, cfg, 1, m.now);
      a.consume("early", cfg, 1, m.now); // an acknowledged key changed again
      a.tick(m.now);
      expect(a.deltaFor("b", m.now)).toBeDefined(); // lost in flight
    }
    m.now += 60_000; // acks stalled past resendAfter: the next delta goes back to the ack
    a.tick(m.now);
    const d = a.deltaFor("b", m.now);
    if (d === undefined) throw new Error("no resend");
    expect(d.fromSeq).toBe(stateOf(a).sessions.get("b")?.acked);
    const sent = d.keys.map((k) => k.key).sort();
    expect(sent).toEqual(["early", ...changed].sort());
    expect(sentDeltaKeys(d)).toEqual(referenceDeltaKeys(a, "b", d));
    expect(m.deliver(d, "b")).toBe(true);
    expect(m.get("b").canonical()).toBe(a.canonical());
  });

  it("a reset session (peer restarted) gets every key held", () => {
    const m = new Mesh(["a", "b"]);
    m.round(1_000);
    const a = m.get("a");
    for (let i = 0; i < 20; i++) a.consume(`k${i}`, config(10, 1), 3, m.now);
    m.round(5_000);
    m.boot("b");
    m.round(1_000);
    expect(m.get("b").keyCount).toBe(20);
  });
});

describe("dropKey", () => {
  it("reports whether the key answered like a new bucket, and keeps the running total", () => {
    const m = new Mesh(["a"]);
    const a = m.get("a");
    const slow = config(10, 1); // refills one token per second
    expect(a.dropKey("nothing", m.now)).toBe("absent");
    a.consume("debt", slow, 4, m.now);
    a.query("full", slow, m.now);
    m.now += 10_000;
    a.tick(m.now); // folds "debt"; "full" is collected already
    expect(a.keyState("full")).toBeUndefined();
    a.query("full", slow, m.now);
    expect(a.dropKey("full", m.now)).toBe("full");
    expect(a.dropKey("debt", m.now)).toBe("unsafe");
    expect(a.keyCount).toBe(0);
    // Running totals survive the drop: the next entry continues from 4.
    a.consume("debt", slow, 1, m.now);
    const e = a.keyState("debt")?.entries[0];
    expect([e?.c0, e?.c1]).toEqual([4, 5]);
    m.now += 10_000;
    a.tick(m.now);
    expect(leftoverTickWork(a, m.now)).toEqual([]);
  });
});
