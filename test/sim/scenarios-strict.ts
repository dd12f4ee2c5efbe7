// Strict mode's acceptance rows (docs/design.md, section 9): over-admission exactly 0 against
// C + r·(t − s) over every window in every load and fault the simulator runs, utilization with
// saturated and with 90/10 demand, the time until a crashed replica's share is used again, and
// the CRDT still converging with strict spends in it.

import { type Row, row } from "./figures.ts";
import type { Scenario } from "./scenarios.ts";
import { C, D_US, FLUSH_US, LIMIT, LINK, R, seconds } from "./scenarios-load.ts";
import { StrictCluster, type StrictOptions, windowOverAdmission } from "./strict-cluster.ts";

/** Lease of the sim's strict policy (the config default). */
export const LEASE_US = 1_000_000;
/** Utilization is measured from here: the bank's start-up wait (L + margin) plus demand ramp. */
export const MEASURE_FROM_US = 3_000_000;

function names(n: number): { name: string; skewUs?: number }[] {
  return Array.from({ length: n }, (_, i) => ({ name: `n${i}` }));
}

function cluster(seed: number, nodes: StrictOptions["nodes"], link = LINK): StrictCluster {
  return new StrictCluster({ seed, nodes, link, flushUs: FLUSH_US, limit: LIMIT, leaseUs: LEASE_US, bank: "n0" });
}

/** The over-admission row every scenario prints: bound exactly 0 tokens. */
export function overRow(name: string, seed: number, s: StrictCluster, extra: string): Row {
  const over = windowOverAdmission(s.admissions, s.c.config.rate);
  const figure = Math.max(0, over.tokens);
  const admitted = s.admittedBetween(0, Number.POSITIVE_INFINITY);
  return row(
    `strict ${name}: over-admission`,
    seed,
    figure,
    0,
    "tokens",
    over.tokens <= 0,
    `worst window ${over.tokens.toFixed(3)} tokens vs C + r(t-s) (at ${(over.at / 1e6).toFixed(3)}s); ${admitted} admitted; denied ${s.denied.tokens} for tokens, ${s.denied.escrow} for escrow; rejected messages ${s.rejected}${s.rejections.length > 0 ? ` (${s.rejections[0]})` : ""}; ${extra}`,
  );
}

function utilization(s: StrictCluster, from: number, to: number): number {
  return s.admittedBetween(from, to) / ((R * (to - from)) / 1e6);
}

function perNode(s: StrictCluster, from: number, to: number): string {
  return [...s.c.nodes.keys()].map((n) => s.admittedBetween(from, to, n)).join("/");
}

function saturated(label: string, n: number, quietFrom: number) {
  return (seed: number, scale: number): Row[] => {
    const T = Math.max(20, seconds(scale)) * 1e6;
    const s = cluster(seed, names(n));
    s.start();
    for (let i = 0; i < n; i++) s.load(`n${i}`, "k", i >= quietFrom ? 10 : 2_000, 0, T);
    s.run(T);
    const u = utilization(s, MEASURE_FROM_US, T);
    const rows = [overRow(label, seed, s, `per replica ${perNode(s, 0, T)}`)];
    if (quietFrom >= n) {
      rows.push(
        row(
          `strict ${label}: utilization`,
          seed,
          u * 100,
          90,
          "% of r",
          u >= 0.9,
          `${s.admittedBetween(MEASURE_FROM_US, T)} admitted in ${(T - MEASURE_FROM_US) / 1e6}s after ${MEASURE_FROM_US / 1e6}s (bank start-up wait L + margin, then demand ramp)`,
        ),
      );
    } else {
      const quiet = `n${quietFrom}`;
      const asked = ((T - MEASURE_FROM_US) / 1e6) * 10;
      const got = s.admittedBetween(MEASURE_FROM_US, T, quiet);
      rows.push(
        row(
          `strict ${label}: quiet replica served`,
          seed,
          (got / asked) * 100,
          90,
          "% of its asks",
          got >= 0.9 * asked,
          `${got} of ~${asked} asked at 10/s admitted after ${MEASURE_FROM_US / 1e6}s; denials at ${quiet}: ${JSON.stringify(s.deniedAt.get(quiet) ?? {})}`,
        ),
      );
    }
    return rows;
  };
}

export const strictTwoSaturated = saturated("2 saturated, d=100ms", 2, 2);
export const strictQuiet = saturated("quiet (10/s) beside saturated", 2, 1);
export const strictFive = saturated("5 saturated", 5, 5);

/** 90/10 demand between two replicas across d = 100 ms: the heavy one is not the bank. */
export function strictSkewedDemand(seed: number, scale: number): Row[] {
  const T = Math.max(20, seconds(scale)) * 1e6;
  const s = cluster(seed, names(2));
  s.start();
  s.load("n0", "k", 200, 0, T);
  s.load("n1", "k", 1_800, 0, T);
  s.run(T);
  const u = utilization(s, MEASURE_FROM_US, T);
  return [
    overRow("90/10 demand", seed, s, `per replica ${perNode(s, 0, T)}`),
    row(
      "strict 90/10 demand, d=100ms: utilization",
      seed,
      u * 100,
      70,
      "% of r",
      u >= 0.7,
      `asked 200/s at the bank n0, 1800/s at n1; admitted after ${MEASURE_FROM_US / 1e6}s ${perNode(s, MEASURE_FROM_US, T)}`,
    ),
  ];
}

/** Ten idle replicas burst together every 2 s (the burst of trap 12). */
export function strictBurst(seed: number, scale: number): Row[] {
  const T = seconds(scale, 30) * 1e6;
  const n = 10;
  const s = cluster(seed, names(n));
  s.start();
  let asked = 0;
  for (let t = 2_000_000; t + 200_000 < T; t += 2_000_000) {
    for (let i = 0; i < n; i++) s.load(`n${i}`, "hot", 5_000, t, t + 150_000, 0.3);
    asked += 1;
  }
  s.run(T);
  const per = asked > 0 ? s.admittedBetween(2_000_000, T) / asked : 0;
  return [
    overRow(
      "burst (10 idle replicas)",
      seed,
      s,
      `${per.toFixed(1)} admitted per 150 ms burst on average vs C + r*0.15s = ${C + (R * 150_000) / 1e6} (false denials are the price: idle replicas hold no share until they ask)`,
    ),
  ];
}

export function strictSkew(label: string, skewUs: number) {
  return (seed: number, scale: number): Row[] => {
    const T = Math.max(20, seconds(scale)) * 1e6;
    const s = cluster(seed, [{ name: "n0", skewUs }, { name: "n1" }, { name: "n2", skewUs: -skewUs / 2 }]);
    s.start();
    for (const n of ["n0", "n1", "n2"]) s.load(n, "k", 2_000, 0, T);
    s.run(T);
    return [
      overRow(
        `skew ${label}`,
        seed,
        s,
        `bank n0 ${skewUs / 1e6}s fast, n2 ${skewUs / 2e6}s slow; utilization after ${MEASURE_FROM_US / 1e6}s ${(utilization(s, MEASURE_FROM_US, T) * 100).toFixed(1)}%`,
      ),
    ];
  };
}

/**
 * Follows the grants of `bank` for `key` to time a dead holder's share coming back: the bank's
 * last grant to it, when the bank stopped counting its share, and the first grant in
 * [from, until) after which the other holders' latest grants sum to more rate than they held
 * when `arm` was called (just before the kill, with the dead holder's id).
 */
export function watchReuse(
  s: StrictCluster,
  bank: string,
  key: string,
  from: number,
  until: number,
): { arm(deadId: string): void; times(): { lastToDead: number; releasedAt: number; reusedAt: number } } {
  let deadId = "";
  let before = 0;
  let reusedAt = Number.NaN;
  let releasedAt = Number.NaN;
  let lastToDead = Number.NaN;
  const latest = new Map<string, number>();
  const othersRate = (): number => {
    let sum = 0;
    for (const [h, p] of latest) if (h !== deadId) sum += p;
    return sum;
  };
  s.onGrant = (g, t) => {
    if (g.key !== key) return;
    latest.set(g.holder, g.rateParts);
    if (g.holder === deadId && g.rateParts > 0) lastToDead = t;
    if (t < from || t >= until || deadId === "") return;
    if (Number.isNaN(releasedAt)) {
      const b = s.state(bank)?.banks.get(key);
      if (b !== undefined && b.heldBy(deadId, s.c.raw(s.c.node(bank))).rateParts === 0) releasedAt = t;
    }
    if (Number.isNaN(reusedAt) && othersRate() > before) reusedAt = t;
  };
  return {
    arm(id: string): void {
      deadId = id;
      before = othersRate();
    },
    times: () => ({ lastToDead, releasedAt, reusedAt }),
  };
}

/**
 * Restarts: a saturated holder (n1) is killed and comes back 500 ms later as a new
 * incarnation; later the bank (n0) is killed and comes back. Prints how long after the kill the
 * bank stopped counting the dead holder's share and first granted that share to others.
 */
export function strictRestart(seed: number, scale: number): Row[] {
  const T = Math.max(24, seconds(scale)) * 1e6;
  const s = cluster(seed, names(3));
  s.start();
  for (const n of ["n0", "n1", "n2"]) s.load(n, "k", 2_000, 0, T);
  const killHolder = 6_000_000;
  const killBank = 14_000_000;
  s.kill("n1", killHolder);
  s.restart("n1", killHolder + 500_000);
  s.kill("n0", killBank);
  s.restart("n0", killBank + 500_000);
  const reuse = watchReuse(s, "n0", "k", killHolder, killBank);
  s.run(killHolder - 1);
  reuse.arm(s.state("n1")?.id ?? "");
  s.run(T);
  const { lastToDead, releasedAt, reusedAt } = reuse.times();
  // From the bank's last grant to the dead holder: the bank cannot know of a crash sooner than
  // it stops hearing from the holder (the kill itself is a one-way delay or so earlier).
  const took = reusedAt - lastToDead;
  const bound = LEASE_US + FLUSH_US;
  const bankBack = s.admittedBetween(killBank, killBank + 500_000 + LEASE_US);
  return [
    overRow(
      "restart (holder, then bank)",
      seed,
      s,
      `holder n1 killed at ${killHolder / 1e6}s, bank n0 at ${killBank / 1e6}s (each back 0.5s later; the new bank grants nothing for L + margin); admitted while the bank was down or waiting: ${bankBack}`,
    ),
    row(
      "strict restart: time to reuse a crashed holder's share",
      seed,
      took / 1e6,
      bound / 1e6,
      "s",
      took <= bound,
      `last grant to the dead holder ${((lastToDead - killHolder) / 1e3).toFixed(0)}ms after the kill (a request in flight); the bank stopped counting its share ${((releasedAt - lastToDead) / 1e3).toFixed(0)}ms and granted it to others ${(took / 1e3).toFixed(0)}ms after that grant (${((reusedAt - killHolder) / 1e3).toFixed(0)}ms after the kill; bound L + flush = ${bound / 1e3}ms from the last grant)`,
    ),
  ];
}

/**
 * Four saturated replicas, the bank and n1 on one side, n2 and n3 on the other, for 60 s; then
 * healed. The far side spends at most what its shares held when cut (their capacity plus their
 * rate until their leases run out), then denies for escrow.
 */
export function strictPartition(seed: number, scale: number): Row[] {
  const split = Math.max(12, Math.round(60 * scale)) * 1e6;
  const from = 5_000_000;
  const heal = from + split;
  const T = heal + 10_000_000;
  const s = cluster(seed, names(4));
  s.start();
  for (const n of ["n0", "n1", "n2", "n3"]) s.load(n, "k", 2_000, 0, T);
  s.partition(
    [
      ["n0", "n1"],
      ["n2", "n3"],
    ],
    from,
    heal,
  );
  let farBound = 0;
  s.run(from);
  for (const n of ["n2", "n3"]) {
    const h = s.state(n)?.holders.get("k");
    if (h === undefined) continue;
    const raw = s.c.raw(s.c.node(n));
    const sh = h.share(raw);
    const left = Math.max(0, sh.validUntilUs - raw);
    farBound += sh.capacityTokens + (R * (sh.rateParts / 10_000) * left) / 1e6;
  }
  s.run(T);
  const far = s.admittedBetween(from, heal, "n2") + s.admittedBetween(from, heal, "n3");
  const farLate = s.admittedBetween(from + LEASE_US, heal, "n2") + s.admittedBetween(from + LEASE_US, heal, "n3");
  const near = s.admittedBetween(from + 3 * LEASE_US, heal);
  const nearRate = near / ((heal - from - 3 * LEASE_US) / 1e6);
  const after = utilization(s, heal + 3_000_000, T);
  return [
    overRow(
      `partition ${split / 1e6}s and heal`,
      seed,
      s,
      `near side's rate during the split ${nearRate.toFixed(1)}/s; utilization from 3 s after the heal ${(after * 100).toFixed(1)}%`,
    ),
    row(
      "strict partition: far side beyond its holdings",
      seed,
      Math.max(0, far - Math.floor(farBound)),
      0,
      "tokens",
      far <= farBound && farLate === 0,
      `far side admitted ${far} during the split, held ${farBound.toFixed(1)} (capacity + rate until its leases end); after L: ${farLate}`,
    ),
  ];
}

/** 5% loss and 5% duplicates with 30 ms jitter (reordering), three saturated replicas. */
export function strictLossDup(seed: number, scale: number): Row[] {
  const T = Math.max(20, seconds(scale)) * 1e6;
  const s = cluster(seed, names(3), { delayUs: D_US, jitterUs: 30_000, loss: 0.05, duplicate: 0.05 });
  s.start();
  for (const n of ["n0", "n1", "n2"]) s.load(n, "k", 2_000, 0, T);
  s.run(T);
  return [
    overRow(
      "5% loss + 5% duplicates + reordering",
      seed,
      s,
      `lost ${s.c.net.lost}, duplicated ${s.c.net.duplicated} of ${s.c.net.sent}; utilization ${(utilization(s, MEASURE_FROM_US, T) * 100).toFixed(1)}%`,
    ),
  ];
}

/** Strict spends are ordinary CRDT consumption: after quiescence every replica holds one state. */
export function strictConverges(seed: number, scale: number): Row[] {
  const T = Math.max(10, seconds(scale, 20)) * 1e6;
  const s = cluster(seed, names(3), { delayUs: D_US, jitterUs: 10_000, loss: 0.05, duplicate: 0.05 });
  s.start();
  for (const n of ["n0", "n1", "n2"]) s.load(n, "k", 2_000, 0, T);
  s.run(T);
  s.quiesce();
  const live = s.c.live();
  const texts = new Set(live.map((n) => n.replica?.canonical() ?? ""));
  const consumed = live.map((n) => {
    let sum = 0;
    for (const v of n.replica?.consumedBy("k")?.values() ?? []) sum += v;
    return sum;
  });
  const admitted = s.admittedBetween(0, Number.POSITIVE_INFINITY);
  const agree = texts.size === 1 && consumed.every((x) => x === admitted);
  return [
    row(
      "strict: CRDT states after quiescence",
      seed,
      texts.size,
      1,
      "states",
      agree,
      `strict spends written as consumption: ${admitted} admitted, each replica's CRDT reports ${consumed.join("/")} consumed`,
    ),
  ];
}

/** Strict mode's scenarios, in the order `npm run sim` prints them. */
export const STRICT_SCENARIOS: readonly Scenario[] = [
  { name: "strict-two-saturated", run: strictTwoSaturated },
  { name: "strict-quiet-replica", run: strictQuiet },
  { name: "strict-five-replicas", run: strictFive },
  { name: "strict-90-10", run: strictSkewedDemand },
  { name: "strict-burst", run: strictBurst },
  { name: "strict-skew-2s", run: strictSkew("2s", 2_000_000) },
  { name: "strict-skew-1h", run: strictSkew("1h", 3_600_000_000) },
  { name: "strict-restart", run: strictRestart },
  { name: "strict-partition", run: strictPartition },
  { name: "strict-loss-dup", run: strictLossDup },
  { name: "strict-converges", run: strictConverges },
];
