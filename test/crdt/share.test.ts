// Share mode (src/core/crdt/share.ts) by hand, on real replicas: what each phase admits, the
// demand figures on the wire and their validation, and that shares never touch the replicated
// state.

import { describe, expect, it } from "vitest";
import type { Replica, UntrustedDelta } from "../../src/core/crdt/index.ts";
import { validateDelta } from "../../src/core/crdt/index.ts";
import { refillFraction } from "../../src/core/crdt/share.ts";
import { viaWire } from "../support/via-wire.ts";
import { config, Mesh } from "./mesh.ts";

const SHARE = { contention: "share" } as const;

/** Consumes 1 token of `key` at `r` up to `tries` times now; returns how many were admitted. */
function admit(m: Mesh, r: Replica, key: string, tries: number): number {
  let n = 0;
  for (let i = 0; i < tries; i++) if (r.consume(key, config(), 1, m.now).allowed) n += 1;
  return n;
}

describe("share mode", () => {
  it("three idle replicas bursting together admit about one bucket, not three (trap 12)", () => {
    for (const contention of ["share", "local"] as const) {
      const m = new Mesh(["a", "b", "c"], { contention });
      m.round(1_000);
      // Every replica bursts before hearing of the others.
      const got = ["a", "b", "c"].map((n) => admit(m, m.get(n), "hot", 20));
      const total = got.reduce((x, y) => x + y, 0);
      if (contention === "share") {
        // C / n_live = 10 / 3 each, rounded up to whole tokens: 4 (no refill accrues within the same microsecond).
        expect(got).toEqual([4, 4, 4]);
        expect(m.get("a").shareOf("hot")?.phase).toBe("probe");
      } else expect(total).toBe(30);
    }
  });

  it("once figures arrive, shares follow demand; replicated state is the same as in local mode", () => {
    const m = new Mesh(["a", "b"], SHARE);
    m.round(1_000);
    for (let step = 0; step < 100; step++) {
      admit(m, m.get("a"), "k", 9);
      admit(m, m.get("b"), "k", 1);
      m.round(5_000);
    }
    const a = m.get("a").shareOf("k");
    const b = m.get("b").shareOf("k");
    expect(a?.phase).toBe("share");
    expect(b?.phase).toBe("share");
    // Demand 1,800/s and 200/s against r = 1,000/s: b asks less than half of r and gets what it
    // asks (0.2 of r), a the rest, each with 10% headroom once the run is established; capacity halved.
    expect(a?.refillShare).toBeGreaterThan(0.85);
    expect(a?.refillShare).toBeLessThan(0.9);
    expect(b?.refillShare).toBeGreaterThan(0.19);
    expect(b?.refillShare).toBeLessThan(0.23);
    expect(a?.capShare).toBe(0.5);
    // Converged as in any mode: shares are not part of the state.
    expect(m.get("a").canonical()).toBe(m.get("b").canonical());
  });

  it("a young run counts live peers not heard from since it began, as a burst's figures arrive one by one", () => {
    const m = new Mesh(["a", "b", "c"], SHARE);
    m.round(1_000);
    m.round(5_000);
    // All three burst together; a hears b first, c's deltas are still on the way.
    for (const n of ["a", "b", "c"]) admit(m, m.get(n), "k", 3);
    m.now += 5_000;
    for (const n of ["a", "b", "c"]) m.get(n).tick(m.now);
    m.deliver(m.delta("b", "a"), "a");
    admit(m, m.get("a"), "k", 1);
    // One figure in, one writer unheard: a third of the bucket, not a half.
    expect(m.get("a").shareOf("k")?.phase).toBe("share");
    expect(m.get("a").shareOf("k")?.capShare).toBeCloseTo(1 / 3, 12);
    m.deliver(m.delta("c", "a"), "a");
    admit(m, m.get("a"), "k", 1);
    expect(m.get("a").shareOf("k")?.capShare).toBeCloseTo(1 / 3, 12);
  });

  it("a peer heard from since the run began, with no figure, is not counted", () => {
    const m = new Mesh(["a", "b", "c"], SHARE);
    m.round(1_000);
    m.round(5_000);
    // a and b burst; c is idle, and its watermark past the run's start reaches a.
    for (const n of ["a", "b"]) admit(m, m.get(n), "k", 3);
    m.now += 5_000;
    for (const n of ["a", "b", "c"]) m.get(n).tick(m.now);
    m.deliver(m.delta("b", "a"), "a");
    m.deliver(m.delta("c", "a"), "a");
    admit(m, m.get("a"), "k", 1);
    expect(m.get("a").shareOf("k")?.capShare).toBeCloseTo(1 / 2, 12);
  });

  it("a lone writer takes the whole bucket after the probe, and keeps it after a pause", () => {
    const m = new Mesh(["a", "b"], SHARE);
    m.round(1_000);
    expect(admit(m, m.get("a"), "solo", 10)).toBe(5); // probe: C / 2
    m.round(300_000); // past shareProbeUs (250 ms) with no figure from b
    expect(m.get("a").shareOf("solo")?.phase).toBe("whole");
    expect(admit(m, m.get("a"), "solo", 20)).toBe(10);
    // A pause longer than shareStaleUs starts a new run of demand, without a probe: no peer
    // demanded the key within shareMemoryUs.
    for (let i = 0; i < 10; i++) m.round(100_000);
    expect(admit(m, m.get("a"), "solo", 20)).toBe(10);
    expect(m.get("a").shareOf("solo")?.phase).toBe("whole");
  });

  it("a peer that falls silent keeps its share until it is retired, then the whole bucket is back", () => {
    const m = new Mesh(["a", "b"], { ...SHARE, retireAfterUs: 1_000_000 });
    m.round(1_000);
    for (let step = 0; step < 40; step++) {
      admit(m, m.get("a"), "k", 5);
      admit(m, m.get("b"), "k", 5);
      m.round(5_000);
    }
    expect(m.get("a").shareOf("k")?.phase).toBe("share");
    // b goes silent (partitioned or dead): a keeps admitting from its share until b is retired.
    for (let i = 0; i < 5; i++) {
      admit(m, m.get("a"), "k", 5);
      m.round(100_000, ["a"]);
    }
    expect(m.get("a").shareOf("k")?.phase).toBe("share");
    for (let i = 0; i < 8; i++) {
      admit(m, m.get("a"), "k", 5);
      m.round(100_000, ["a"]);
    }
    expect(m.get("a").incarnationRecord(m.get("b").incarnation)?.retired).toBeGreaterThanOrEqual(0);
    expect(m.get("a").shareOf("k")?.phase).toBe("whole");
  });

  it("keys under a local prefix admit from the whole bucket", () => {
    const m = new Mesh(["a", "b", "c"], SHARE);
    m.get("a").setOtherContentionPrefixes(["batch\u0000"]);
    expect(m.get("a").contentionOf("batch\u0000k")).toBe("local");
    m.round(1_000);
    expect(admit(m, m.get("a"), "batch\u0000k", 20)).toBe(10);
    expect(admit(m, m.get("a"), "api\u0000k", 20)).toBe(4);
  });

  it("sends this replica's demand figure on its key parts, through the codec", () => {
    const m = new Mesh(["a", "b"], SHARE);
    m.round(1_000);
    admit(m, m.get("a"), "k", 3);
    m.now += 5_000;
    m.get("a").tick(m.now);
    const d = m.get("a").deltaFor("b", m.now);
    const part = d?.keys.find((k) => k.key === "k");
    expect(part?.demand?.length).toBe(1);
    const [ix, at, rateMilli] = part?.demand?.[0] ?? [];
    expect(d?.incarnations[ix as number]).toBe(m.get("a").incarnation);
    expect(at).toBeLessThanOrEqual(m.now);
    expect(rateMilli).toBeGreaterThan(0);
    const back = viaWire(d as NonNullable<typeof d>).keys.find((k) => k.key === "k");
    expect(back?.demand).toEqual(part?.demand);
  });
});

describe("retry-after under a share", () => {
  it("tells a caller denied by a small share to wait for the share's refill, not the whole bucket's", () => {
    const m = new Mesh(["a", "b"], SHARE);
    m.round(1_000);
    for (let step = 0; step < 100; step++) {
      admit(m, m.get("a"), "k", 9);
      admit(m, m.get("b"), "k", 1);
      m.round(5_000);
    }
    // a stops; the replicated level refills to the whole bucket within 10 ms, while b's share
    // (a's figure is current for shareStaleUs more) refills at about a fifth of r.
    m.round(20_000);
    const b = m.get("b");
    const share = b.shareOf("k");
    expect(share?.phase).toBe("share");
    let denied = b.consume("k", config(), 1, m.now);
    for (let i = 0; i < 20 && denied.allowed; i++) denied = b.consume("k", config(), 1, m.now);
    expect(denied.allowed).toBe(false);
    // The replicated level still holds tokens: the share is what denies.
    expect(b.level("k", config(), m.now).level).toBeGreaterThanOrEqual(config().rate.unitsPerToken);
    // One token at the whole rate is 1 ms; at the share's refill, 1 ms / refillShare at most.
    const perToken = 1_000 / (b.shareOf("k")?.refillShare ?? 1);
    expect(denied.retryAfterUs).toBeGreaterThan(1_000);
    expect(denied.retryAfterUs).toBeLessThanOrEqual(Math.ceil(perToken));
    expect(denied.buckets[0]?.retryAfterUs).toBe(denied.retryAfterUs);
    // It is the true wait: a microsecond early is still denied, on time is admitted.
    const wait = denied.retryAfterUs;
    expect(b.consume("k", config(), 1, m.now + wait - 1).allowed).toBe(false);
    expect(b.consume("k", config(), 1, m.now + wait).allowed).toBe(true);
  });

  it("keeps the bucket's own wait in local mode and when the replicated level is what denies", () => {
    const m = new Mesh(["a"], { contention: "local" });
    m.round(1_000);
    admit(m, m.get("a"), "k", 10);
    const denied = m.get("a").consume("k", config(), 1, m.now);
    expect(denied.allowed).toBe(false);
    expect(denied.retryAfterUs).toBe(1_000);
  });
});

describe("the refill split (refillFraction)", () => {
  it("follows demand while demand fits the rate", () => {
    expect(refillFraction(900, [100], 1_000_000)).toBeCloseTo(0.9, 12);
    expect(refillFraction(100, [100, 200], 1_000_000)).toBeCloseTo(0.25, 12);
  });
  it("gives a quiet replica what it asks beside a saturated one, and the saturated one the rest (trap 2)", () => {
    // Milli-tokens per second: 10/s beside 2,000/s, r = 1,000/s. Proportion would give 10/2,010 of r.
    expect(refillFraction(10_000, [2_000_000], 1_000_000)).toBeCloseTo(0.01, 12);
    expect(refillFraction(2_000_000, [10_000], 1_000_000)).toBeCloseTo(0.99, 12);
  });
  it("splits what the small asks leave in proportion to the large ones, and the fractions sum to 1", () => {
    const asks = [50_000, 600_000, 1_200_000, 3_000_000];
    const fractions = asks.map((own, i) => refillFraction(own, [...asks.slice(0, i), ...asks.slice(i + 1)], 1_000_000));
    expect(fractions[0]).toBeCloseTo(0.05, 12);
    expect(fractions.reduce((x, y) => x + y, 0)).toBeCloseTo(1, 12);
    expect((fractions[3] as number) / (fractions[2] as number)).toBeCloseTo(2.5, 9);
    // 600/s is more than an even split of what 50/s leaves over three (316/s): proportional with the large.
    expect(fractions[1]).toBeCloseTo((0.95 * 600) / 4_800, 12);
  });
  it("splits evenly without any demand, and in proportion without a known rate", () => {
    expect(refillFraction(0, [0, 0], 1_000_000)).toBeCloseTo(1 / 3, 12);
    expect(refillFraction(10_000, [2_000_000], undefined)).toBeCloseTo(10 / 2_010, 12);
  });
});

describe("demand figures are validated like the rest of a delta", () => {
  function withFigure(): UntrustedDelta {
    const m = new Mesh(["a", "b"], SHARE);
    m.round(1_000);
    admit(m, m.get("a"), "k", 3);
    m.now += 5_000;
    m.get("a").tick(m.now);
    const d = m.get("a").deltaFor("c", m.now);
    if (d === undefined) throw new Error("no delta");
    return viaWire(d);
  }
  const CASES: [string, (row: number[], d: UntrustedDelta) => void, string][] = [
    [
      "an incarnation index out of range",
      (row) => {
        row[0] = 99;
      },
      "keys[0].demand[0][0]",
    ],
    [
      "a stamp before the writer's birth",
      (row) => {
        row[1] = 0;
      },
      "keys[0].demand[0][1]",
    ],
    [
      "a figure above the bound",
      (row) => {
        row[2] = 2 ** 51;
      },
      "keys[0].demand[0][2]",
    ],
    [
      "a negative figure",
      (row) => {
        row[2] = -1;
      },
      "keys[0].demand[0][2]",
    ],
    [
      "a short row",
      (row) => {
        row.pop();
      },
      "keys[0].demand[0]",
    ],
    [
      "a writer named twice",
      (row, d) => {
        (d.keys[0] as { demand: number[][] }).demand.push([...row]);
      },
      "keys[0].demand[1]",
    ],
  ];
  it("accepts the figure a replica sent", () => {
    const d = withFigure();
    expect(d.keys[0]?.demand?.length).toBe(1);
    expect(validateDelta(d, { ...m0Limits() }).ok).toBe(true);
  });
  for (const [name, mutate, field] of CASES) {
    it(`rejects ${name}, naming ${field}`, () => {
      const d = withFigure();
      const row = d.keys[0]?.demand?.[0] as number[];
      mutate(row, d);
      const r = validateDelta(d, m0Limits());
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.field).toBe(field);
    });
  }
  it("rejects a bad figure whole: nothing of the delta is applied", () => {
    const m = new Mesh(["a", "b"], SHARE);
    m.round(1_000);
    const d = withFigure();
    (d.keys[0]?.demand?.[0] as number[])[2] = -5;
    const before = m.get("b").canonical();
    expect(m.get("b").applyDelta(d, m.now).ok).toBe(false);
    expect(m.get("b").canonical()).toBe(before);
    expect(m.get("b").shareOf("k")).toBeUndefined();
  });
});

function m0Limits() {
  return new Mesh(["x"]).get("x").limits;
}
