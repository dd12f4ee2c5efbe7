// Strict mode's core against its contract: over every window [s, t], what all holders admit is
// at most C + r·(t − s), whatever the network does (delay, loss, duplicates, reordering, cuts)
// and whatever the clocks do within the documented drift (any offset, rates 500 ppm apart);
// plus the bank's invariant, the denial reasons and the checks on peer messages.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  bankHoldUs,
  type EscrowGrant,
  GRANTABLE_PARTS,
  KeyBank,
  KeyHolder,
  SHARE_PARTS,
  strictRateProblem,
  validateGrant,
  validateRequest,
} from "../../src/core/escrow/index.ts";
import { makeRate, type Rate } from "../../src/core/rate.ts";
import { EventQueue } from "../sim/event-queue.ts";
import { Prng } from "../sim/prng.ts";
import { type StrictAdmission, windowOverAdmission } from "../sim/strict-cluster.ts";

function rateOf(capacity: number, refillTokens: number, refillPeriodUs: number): Rate {
  const r = makeRate({ capacity, refillTokens, refillPeriodUs });
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

interface World {
  readonly seed: number;
  readonly rate: Rate;
  readonly holders: number;
  readonly leaseUs: number;
  /** What holders use as their lease; equal to leaseUs unless a test breaks it on purpose. */
  readonly holderLeaseUs?: number;
  readonly flushUs: number;
  readonly maxDelayUs: number;
  readonly loss: number;
  readonly duplicate: number;
  /** Per node: clock offset (us) and rate error (ppm, within +-500). */
  readonly clocks: readonly { readonly offsetUs: number; readonly ppm: number }[];
  /** A cut between the bank and holder 1 over [from, to). */
  readonly cut?: { readonly from: number; readonly to: number };
  readonly bankRestartAt?: number;
  readonly runUs: number;
  /** Attempts per second at each holder (all greedy: every attempt admitted if held). */
  readonly askPerSecond: number;
}

/** Runs one bank (node 0, also a holder) and `holders - 1` more; returns the arrival log. */
function simulate(w: World): { admissions: StrictAdmission[]; outstandingOk: boolean } {
  const q = new EventQueue();
  const rng = new Prng(w.seed);
  const clock = (i: number): number => {
    const c = w.clocks[i] ?? { offsetUs: 0, ppm: 0 };
    return c.offsetUs + Math.floor(q.now * (1 + c.ppm / 1e6));
  };
  let bank = new KeyBank("n0", "k", w.rate, w.leaseUs, clock(0));
  const holders = Array.from({ length: w.holders }, (_, i) => new KeyHolder(w.rate, w.holderLeaseUs ?? w.leaseUs, clock(i)));
  const admissions: StrictAdmission[] = [];
  let outstandingOk = true;
  const cut = (i: number): boolean => i === 1 && w.cut !== undefined && q.now >= w.cut.from && q.now < w.cut.to;
  const send = (i: number, deliver: () => void): void => {
    if (i === 0) {
      deliver();
      return;
    }
    if (cut(i) || rng.chance(w.loss)) return;
    const copies = rng.chance(w.duplicate) ? 2 : 1;
    for (let k = 0; k < copies; k++) q.at(q.now + rng.int(0, w.maxDelayUs), () => (cut(i) ? undefined : deliver()));
  };
  if (w.bankRestartAt !== undefined) {
    q.at(w.bankRestartAt, () => {
      bank = new KeyBank("n0", "k", w.rate, w.leaseUs, clock(0));
    });
  }
  for (let i = 0; i < w.holders; i++) {
    const flush = (): void => {
      q.at(q.now + w.flushUs, flush);
      const h = holders[i] as KeyHolder;
      const ask = h.request(clock(i));
      const req = { holder: `h${i}`, key: "k", seq: ask.seq, demandPerSecond: ask.demandPerSecond };
      send(i, () => bank.request(req, clock(0)));
      if (i !== 0) return;
      for (const g of bank.grants(clock(0))) {
        const to = Number(g.holder.slice(1));
        send(to, () => (holders[to] as KeyHolder).applyGrant(g, clock(to)));
      }
      const o = bank.outstanding(clock(0));
      if (o.rateParts > GRANTABLE_PARTS || o.capacityTokens > w.rate.capacity) outstandingOk = false;
    };
    q.at(rng.int(0, w.flushUs), flush);
    const gap = Math.max(1, Math.round(1e6 / w.askPerSecond));
    const ask = (): void => {
      q.at(q.now + rng.int(1, 2 * gap), ask);
      const cost = rng.chance(0.2) ? rng.int(1, Math.max(1, Math.min(3, w.rate.capacity))) : 1;
      if ((holders[i] as KeyHolder).admit(cost, clock(i)).allowed) admissions.push({ t: q.now, node: `h${i}`, cost });
    };
    q.at(rng.int(0, gap), ask);
  }
  q.runUntil(w.runUs);
  return { admissions, outstandingOk };
}

const worldArb = fc
  .record({
    seed: fc.integer({ min: 1, max: 1_000_000 }),
    capacity: fc.integer({ min: 1, max: 40 }),
    perSecond: fc.constantFrom(1, 7, 100, 1000, 5000),
    holders: fc.integer({ min: 1, max: 4 }),
    leaseUs: fc.constantFrom(50_000, 200_000, 1_000_000),
    maxDelayUs: fc.constantFrom(0, 5_000, 60_000, 400_000),
    loss: fc.constantFrom(0, 0.1, 0.5),
    duplicate: fc.constantFrom(0, 0.2),
    clocks: fc.array(
      fc.record({ offsetUs: fc.integer({ min: -3_600_000_000, max: 3_600_000_000 }), ppm: fc.integer({ min: -500, max: 500 }) }),
      { minLength: 4, maxLength: 4 },
    ),
    cut: fc.option(fc.record({ from: fc.integer({ min: 0, max: 1_000_000 }), len: fc.integer({ min: 1, max: 1_500_000 }) }), {
      nil: undefined,
    }),
    bankRestartAt: fc.option(fc.integer({ min: 0, max: 2_000_000 }), { nil: undefined }),
  })
  .map(
    (a): World => ({
      seed: a.seed,
      rate: rateOf(a.capacity, a.perSecond, 1_000_000),
      holders: a.holders,
      leaseUs: a.leaseUs,
      flushUs: 5_000,
      maxDelayUs: a.maxDelayUs,
      loss: a.loss,
      duplicate: a.duplicate,
      clocks: a.clocks,
      cut: a.cut === undefined ? undefined : { from: a.cut.from, to: a.cut.from + a.cut.len },
      bankRestartAt: a.bankRestartAt,
      runUs: 2_500_000,
      askPerSecond: Math.min(4000, Math.max(20, a.perSecond * 2)),
    }),
  );

describe("strict mode: never over-admits", () => {
  it("over every window, admitted <= C + r(t - s); the bank never counts more than the limit", () => {
    fc.assert(
      fc.property(worldArb, (w) => {
        const { admissions, outstandingOk } = simulate(w);
        expect(outstandingOk).toBe(true);
        expect(windowOverAdmission(admissions, w.rate).tokens).toBeLessThanOrEqual(0);
      }),
      { numRuns: Number(process.env.ESCROW_RUNS ?? 60), seed: Number(process.env.ESCROW_SEED ?? 11) },
    );
  }, 60_000);

  it("the check can fail: a holder whose lease outlives the bank's count over-admits across a cut", () => {
    const w: World = {
      seed: 3,
      rate: rateOf(10, 1000, 1_000_000),
      holders: 2,
      leaseUs: 200_000,
      holderLeaseUs: 2_000_000,
      flushUs: 5_000,
      maxDelayUs: 1_000,
      loss: 0,
      duplicate: 0,
      clocks: [],
      cut: { from: 1_000_000, to: 3_000_000 },
      runUs: 3_000_000,
      askPerSecond: 4000,
    };
    expect(windowOverAdmission(simulate(w).admissions, w.rate).tokens).toBeGreaterThan(0);
    expect(windowOverAdmission(simulate({ ...w, holderLeaseUs: undefined }).admissions, w.rate).tokens).toBeLessThanOrEqual(0);
  });

  it("the window figure is exact: C at once, then r per second, and one token more is one token over", () => {
    const rate = rateOf(5, 10, 1_000_000);
    const at = (ts: number[]): StrictAdmission[] => ts.map((t) => ({ t, node: "a", cost: 1 }));
    expect(windowOverAdmission(at([0, 0, 0, 0, 0]), rate).tokens).toBe(0);
    expect(windowOverAdmission(at([0, 0, 0, 0, 0, 100_000]), rate).tokens).toBe(0);
    expect(windowOverAdmission(at([0, 0, 0, 0, 0, 99_999]), rate).tokens).toBeCloseTo(0.00001, 8);
    expect(windowOverAdmission(at([7, 7, 7, 7, 7, 7]), rate).tokens).toBe(1);
  });
});

describe("strict mode: bank, holder and their messages", () => {
  const rate = rateOf(10, 1000, 1_000_000);
  const L = 1_000_000;

  it("a new bank grants nothing until an earlier incarnation's leases have run out", () => {
    const bank = new KeyBank("n0", "k", rate, L, 0);
    bank.request({ holder: "h", key: "k", seq: 1, demandPerSecond: 500 }, 10);
    expect(bank.grants(bankHoldUs(L) - 1)).toEqual([]);
    bank.request({ holder: "h", key: "k", seq: 2, demandPerSecond: 500 }, bankHoldUs(L));
    const g = bank.grants(bankHoldUs(L));
    expect(g.length).toBe(1);
    expect(g[0]?.rateParts).toBe(6_250);
  });

  it("holders with no share deny for escrow; an empty share denies for tokens, with the wait", () => {
    const h = new KeyHolder(rate, L, 0);
    const none = h.admit(1, 0);
    expect(none).toMatchObject({ allowed: false, reason: "escrow" });
    const ask = h.request(0);
    const grant: EscrowGrant = { bank: "n0", holder: "h", key: "k", seq: ask.seq, rateParts: SHARE_PARTS / 2, capacityTokens: 2 };
    expect(h.applyGrant(grant, 100)).toEqual({ ok: true, value: "applied" });
    // The share starts empty and refills at 500/s: 2 ms per token.
    expect(h.admit(1, 100)).toMatchObject({ allowed: false, reason: "tokens", retryAfterUs: 2_000 });
    expect(h.admit(1, 2_100).allowed).toBe(true);
    expect(h.admit(3, 100_000)).toMatchObject({ allowed: false, reason: "escrow" }); // more than the share's capacity
    expect(h.admit(1, L)).toMatchObject({ allowed: false, reason: "escrow" }); // the lease ran out at sent + L
  });

  it("duplicate, reordered and dead grants change nothing; a grant for a request never sent is refused", () => {
    const h = new KeyHolder(rate, L, 0);
    const a = h.request(0).seq;
    const b = h.request(5_000).seq;
    const g = (seq: number, rateParts: number): EscrowGrant => ({ bank: "n0", holder: "h", key: "k", seq, rateParts, capacityTokens: 5 });
    expect(h.applyGrant(g(b, 2_000), 10_000)).toEqual({ ok: true, value: "applied" });
    expect(h.applyGrant(g(a, 9_000), 10_001)).toEqual({ ok: true, value: "stale" });
    expect(h.applyGrant(g(b, 9_000), 10_002)).toEqual({ ok: true, value: "stale" });
    expect(h.share(10_003).rateParts).toBe(2_000);
    expect(h.applyGrant(g(b + 5, 2_000), 10_004).ok).toBe(false);
  });

  it("a holder that stops asking gets no more leases, and its share is free again L + margin after the last", () => {
    const bank = new KeyBank("n0", "k", rate, L, -10 * L);
    bank.request({ holder: "a", key: "k", seq: 1, demandPerSecond: 10_000 }, 0);
    expect(bank.grants(0)[0]?.rateParts).toBe(GRANTABLE_PARTS);
    bank.request({ holder: "b", key: "k", seq: 1, demandPerSecond: 10_000 }, 5_000);
    const early = bank.grants(5_000);
    expect(early.map((g) => [g.holder, g.rateParts])).toEqual([["b", 0]]);
    bank.request({ holder: "b", key: "k", seq: 2, demandPerSecond: 10_000 }, bankHoldUs(L));
    expect(bank.grants(bankHoldUs(L)).map((g) => [g.holder, g.rateParts])).toEqual([["b", GRANTABLE_PARTS]]);
  });

  it("peer messages are checked: field and limit named, nothing changes", () => {
    expect(validateRequest({ holder: "x", key: "k", seq: 1, demandPerSecond: 1 }, "y")).toMatchObject({
      ok: false,
      error: { field: "holder" },
    });
    expect(validateRequest({ holder: "y", key: "k", seq: 0, demandPerSecond: 1 }, "y")).toMatchObject({
      ok: false,
      error: { field: "seq" },
    });
    expect(validateRequest({ holder: "y", key: "k", seq: 1, demandPerSecond: Number.NaN }, "y")).toMatchObject({
      ok: false,
      error: { field: "demandPerSecond" },
    });
    const expectG = { bank: "n0", holder: "h", rate };
    const good = { bank: "n0", holder: "h", key: "k", seq: 1, rateParts: 1, capacityTokens: 1 };
    expect(validateGrant(good, expectG).ok).toBe(true);
    expect(validateGrant({ ...good, bank: "n1" }, expectG)).toMatchObject({ ok: false, error: { field: "bank" } });
    expect(validateGrant({ ...good, rateParts: SHARE_PARTS + 1 }, expectG)).toMatchObject({ ok: false, error: { field: "rateParts" } });
    const big = validateGrant({ ...good, capacityTokens: 11 }, expectG);
    expect(big).toMatchObject({ ok: false, error: { field: "capacityTokens" } });
    expect(big.ok ? "" : big.error.message).toContain("0..10");
  });

  it("limits whose shares would not stay exact are refused for strict mode", () => {
    expect(strictRateProblem(rate)).toBeUndefined();
    expect(strictRateProblem(rateOf(1_000_000_000_000, 1, 1_000))).toContain("2^53");
  });
});
