// The versioned config path as the server now drives it: a policy's (version, effectiveAt) reach
// the replicated config, the higher version wins whichever config the caller passes, the switch
// happens at the effective time (old rate before, min(level, C_new) at it, new rate after), and
// what is reported is the limit that is enforced.

import { describe, expect, it } from "vitest";
import { makeKeyConfig, Replica } from "../../src/core/crdt/index.ts";
import { decide } from "../../src/core/decision.ts";

const SECOND = 1_000_000;

function lone(): Replica {
  return new Replica({ node: "solo", peers: [], nowUs: 0, randomHex: () => "2".repeat(18), slotWidthUs: 1 });
}

function config(capacity: number, refillPerSecond: number, version: number, tEff: number) {
  const made = makeKeyConfig({ capacity, refillTokens: refillPerSecond, refillPeriodUs: SECOND }, version, tEff);
  if (!made.ok) throw new Error(made.error.message);
  return made.value;
}

describe("versioned policy configs", () => {
  it("lowering 50 -> 5 at tEff: a busy key is clamped to min(level, 5) and refills at the new rate", () => {
    const r = lone();
    const v0 = config(50, 50, 0, 0);
    const t0 = 10 * SECOND;
    for (let i = 0; i < 20; i++) expect(r.consume("k", v0, 1, t0).allowed).toBe(true); // level 30 of 50
    const tEff = t0 + SECOND / 10; // 0.1 s later: +5 at the old rate, so 35 before the switch
    const v1 = config(5, 5, 1, tEff);
    // Before tEff the old limit holds, even when the caller already has the new one.
    expect(r.consume("k", v1, 1, tEff - 1).buckets[0]?.rate.capacity).toBe(50);
    // At and after tEff: min(level, 5) = 5, then 5 tokens/s; the answer says 5.
    let admitted = 0;
    for (let i = 0; i < 80; i++) if (r.consume("k", v1, 1, tEff + 1).allowed) admitted++;
    expect(admitted).toBe(5);
    const out = r.query("k", v0, tEff + SECOND / 5 + 1); // +1 token at 5/s; a caller passing v0 still gets v1
    expect(out.buckets[0]?.rate.capacity).toBe(5);
    expect(out.buckets[0]?.remaining).toBe(1);
  });

  it("raising 5 -> 10 on a drained key: refill follows the new rate and the answer says 10", () => {
    const r = lone();
    const v0 = config(5, 5, 0, 0);
    const t0 = 10 * SECOND;
    for (let i = 0; i < 5; i++) r.consume("k", v0, 1, t0);
    expect(r.consume("k", v0, 1, t0).allowed).toBe(false);
    const v1 = config(10, 10, 1, t0 + 1);
    const later = r.query("k", v1, t0 + 1 + SECOND / 2); // 0.5 s at 10/s = 5 tokens (old rate: 2.5)
    expect(later.buckets[0]?.rate.capacity).toBe(10);
    expect(later.buckets[0]?.remaining).toBe(5);
  });

  it("a higher version wins over a lower one in a join, in either order", () => {
    const a = lone();
    const b = new Replica({ node: "b", peers: [], nowUs: 0, randomHex: () => "3".repeat(18), slotWidthUs: 1 });
    const low = config(50, 50, 1, 0);
    const high = config(5, 5, 2, 0);
    a.consume("k", high, 1, SECOND);
    b.consume("k", low, 1, SECOND);
    expect(b.level("k", low, SECOND).config.version).toBe(1);
    // The old config passed by a replica that has not reloaded never displaces the new one.
    expect(a.level("k", low, SECOND).config.version).toBe(2);
    expect(decide([a.access("k", low, 1, SECOND)], false).buckets[0]?.rate.capacity).toBe(5);
  });
});
