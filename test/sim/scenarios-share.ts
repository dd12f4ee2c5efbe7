// Share mode's acceptance rows (docs/design.md, section 9, "Modes"): the idle burst of trap 12
// at two delays, the throughput rows of property 6 with shares on, a replica that becomes
// active beside a saturated one, and skewed demand. Each runs the real core with
// `contention: "share"`; the idle-burst rows also run the local mode on the same seed, for the
// figure they replace.

import { Cluster } from "./cluster.ts";
import { admittedBetween, type Row, row } from "./figures.ts";
import type { LinkSpec } from "./network.ts";
import type { Scenario } from "./scenarios.ts";
import { C, D_US, FLUSH_US, LIMIT, LINK, R, seconds, WARM_US } from "./scenarios-load.ts";

const SHARE = { contention: "share" } as const;

function names(n: number): { name: string }[] {
  return Array.from({ length: n }, (_, i) => ({ name: `n${i}` }));
}

/** Ten idle replicas burst on one key for 150 ms at 5,000/s each: admitted in the first burst. */
function firstBurst(seed: number, link: LinkSpec, contention: "share" | "local"): { admitted: number; ideal: number } {
  const n = 10;
  const c = new Cluster({ seed, nodes: names(n), link, flushUs: FLUSH_US, limit: LIMIT, replica: { contention } });
  c.start();
  const burstUs = 150_000;
  for (let i = 0; i < n; i++) c.load(`n${i}`, "hot", 5_000, WARM_US, WARM_US + burstUs, 0.3);
  c.run(WARM_US + burstUs + 500_000);
  return { admitted: admittedBetween(c, WARM_US, WARM_US + burstUs), ideal: C + (R * burstUs) / 1e6 };
}

function idleBurst(label: string, link: LinkSpec) {
  return (seed: number): Row[] => {
    const share = firstBurst(seed, link, "share");
    const local = firstBurst(seed, link, "local");
    const ratio = share.admitted / share.ideal;
    return [
      row(
        `share: idle burst x10, ${label}`,
        seed,
        ratio,
        1.25,
        "x ideal",
        ratio <= 1.25,
        `first 150ms burst of 10 idle replicas: ${share.admitted} admitted vs ideal ${share.ideal} (local mode, same seed: ${local.admitted}, ${(local.admitted / local.ideal).toFixed(2)}x)`,
      ),
    ];
  };
}

/** The slow, unreliable link: d = 100 ms with 30 ms jitter and 5% loss. */
const LOSSY_LABEL = "d=100ms+30ms jitter+5% loss";
const LOSSY: LinkSpec = { delayUs: D_US, jitterUs: 30_000, loss: 0.05, duplicate: 0 };

export const idleBurstFast = idleBurst("d=5ms", { delayUs: 5_000, jitterUs: 1_000, loss: 0, duplicate: 0 });
export const idleBurstSlow = idleBurst(LOSSY_LABEL, LOSSY);

/** Property 6 with shares on: admitted over T against r*T (same bound as the local rows). */
function throughput(name: string, seed: number, scale: number, perSec: readonly number[], link: LinkSpec = LINK): Row {
  const T = Math.max(30, seconds(scale)) * 1e6;
  const c = new Cluster({ seed, nodes: names(perSec.length), link, flushUs: FLUSH_US, limit: LIMIT, replica: SHARE });
  c.start();
  for (const [i, rate] of perSec.entries()) c.load(`n${i}`, "k", rate, 0, T);
  c.run(T);
  const admitted = admittedBetween(c, 0, T);
  const ideal = (R * T) / 1e6;
  const lo = -0.01 * ideal;
  const hi = 0.01 * ideal + C + (R * D_US) / 1e6;
  const shares = perSec.map((_, i) => admittedBetween(c, 0, T, `n${i}`)).join("/");
  return row(
    name,
    seed,
    admitted - ideal,
    hi,
    "tokens",
    admitted - ideal >= lo && admitted - ideal <= hi,
    `${admitted} admitted in ${T / 1e6}s (r*T = ${ideal}; bound -1% .. +1% + C + r*d); per replica ${shares}`,
  );
}

export function shareTwoSaturated(seed: number, scale: number): Row[] {
  return [throughput("share: 2 saturated, d=100ms", seed, scale, [2_000, 2_000])];
}

export function shareQuietReplica(seed: number, scale: number): Row[] {
  return [throughput("share: quiet (10/s) beside saturated", seed, scale, [2_000, 10])];
}

export function shareTwoSaturatedLossy(seed: number, scale: number): Row[] {
  return [throughput(`share: 2 saturated, ${LOSSY_LABEL}`, seed, scale, [2_000, 2_000], LOSSY)];
}

export function shareQuietReplicaLossy(seed: number, scale: number): Row[] {
  return [throughput(`share: quiet (10/s) beside saturated, ${LOSSY_LABEL}`, seed, scale, [2_000, 10], LOSSY)];
}

/**
 * n0 saturates alone; n1 starts saturating at t1. Figure: n1's admitted rate over the second
 * after t1 + 2d, as a share of its fair share r/2 (bound: at least 90%).
 */
function becomesActive(label: string, link: LinkSpec) {
  return (seed: number, scale: number): Row[] => {
    const T = seconds(scale, 20) * 1e6;
    const t1 = Math.round(T / 2);
    const c = new Cluster({ seed, nodes: names(2), link, flushUs: FLUSH_US, limit: LIMIT, replica: SHARE });
    c.start();
    c.load("n0", "k", 2_000, 0, T);
    c.load("n1", "k", 2_000, t1, T);
    c.run(T);
    const from = t1 + 2 * D_US;
    const got = admittedBetween(c, from, from + 1_000_000, "n1");
    const fair = R / 2;
    const pct = (100 * got) / fair;
    const first = admittedBetween(c, t1, from, "n1");
    const after = admittedBetween(c, from, from + 1_000_000);
    return [
      row(
        `share: becomes active, 2d after${label}`,
        seed,
        pct,
        90,
        "% of fair",
        pct >= 90,
        `n1 starts at ${t1 / 1e6}s beside saturated n0: ${got} admitted in the second from t1 + 2d (fair share ${fair}/s; both: ${after}); ${first} in its first 2d`,
      ),
    ];
  };
}

export const shareBecomesActive = becomesActive("", LINK);
export const shareBecomesActiveLossy = becomesActive(`, ${LOSSY_LABEL}`, LOSSY);

/**
 * Two replicas, demand 900/s and 100/s (together r): false denials against the ideal bucket
 * over the same requests, after the warm-up: (ideal admitted - admitted) / ideal admitted.
 */
function skewed(label: string, link: LinkSpec) {
  return (seed: number, scale: number): Row[] => {
    const T = Math.max(30, seconds(scale)) * 1e6;
    const c = new Cluster({ seed, nodes: names(2), link, flushUs: FLUSH_US, limit: LIMIT, replica: SHARE });
    c.start();
    c.load("n0", "k", 900, 0, T);
    c.load("n1", "k", 100, 0, T);
    let idealAtWarm = 0;
    c.queue.at(WARM_US, () => {
      idealAtWarm = c.truth.get("k")?.idealAdmitted ?? 0;
    });
    c.run(T);
    const ideal = (c.truth.get("k")?.idealAdmitted ?? 0) - idealAtWarm;
    const admitted = admittedBetween(c, WARM_US, T);
    const wrong = Math.max(0, ideal - admitted) / ideal;
    const perNode = [0, 1].map((i) => admittedBetween(c, WARM_US, T, `n${i}`)).join("/");
    return [
      row(
        `share: skew 90/10, false denials${label}`,
        seed,
        100 * wrong,
        5,
        "% of ideal",
        wrong <= 0.05,
        `${admitted} admitted vs ideal ${ideal} after ${WARM_US / 1e6}s (demand 900/s + 100/s = r); per replica ${perNode}`,
      ),
    ];
  };
}

export const shareSkew = skewed("", LINK);
export const shareSkewLossy = skewed(`, ${LOSSY_LABEL}`, LOSSY);

/** Share mode's rows, in the order `npm run sim` prints them. */
export const SHARE_SCENARIOS: readonly Scenario[] = [
  { name: "share-idle-burst-5ms", run: idleBurstFast },
  { name: "share-idle-burst-100ms", run: idleBurstSlow },
  { name: "share-two-saturated", run: shareTwoSaturated },
  { name: "share-quiet-replica", run: shareQuietReplica },
  { name: "share-becomes-active", run: shareBecomesActive },
  { name: "share-skew", run: shareSkew },
  // The same run at d = 100 ms with jitter and loss (the idle burst's is above): npm run sim only.
  { name: "share-two-saturated-lossy", run: shareTwoSaturatedLossy, simOnly: true },
  { name: "share-quiet-replica-lossy", run: shareQuietReplicaLossy, simOnly: true },
  { name: "share-becomes-active-lossy", run: shareBecomesActiveLossy, simOnly: true },
  { name: "share-skew-lossy", run: shareSkewLossy, simOnly: true },
];
