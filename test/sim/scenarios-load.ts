// Acceptance scenarios under load (docs/design.md, section 6): throughput of saturated replicas,
// the quiet replica of trap 2, five replicas, bursts, and clock skew.

import { Cluster } from "./cluster.ts";
import { admittedBetween, type Row, row, watchBurst } from "./figures.ts";

export const LIMIT = { capacity: 10, refillTokens: 1000, refillPeriodUs: 1_000_000 };
export const R = 1000; // tokens per second
export const C = 10;
export const D_US = 100_000;
export const FLUSH_US = 5_000;
export const WARM_US = 2_000_000;
export const LINK = { delayUs: D_US, jitterUs: 1_000, loss: 0, duplicate: 0 };

export function seconds(scale: number, full = 60): number {
  return Math.max(10, Math.round(full * scale));
}

function names(n: number): { name: string }[] {
  return Array.from({ length: n }, (_, i) => ({ name: `n${i}` }));
}

/**
 * Total admitted over the run against r*T: within 1% of r*T, plus at most C + r*d once (what the
 * replicas admit blind before they first see each other). Counted from t = 0 so the start-up
 * burst and its payback both fall inside; the rate after a 2 s warm-up is printed as well.
 */
function throughput(name: string, seed: number, scale: number, nodes: number, quietFrom: number): Row {
  // At least 30 s even when scaled down: the ~200 ms warm-up (first sync) alone is 2% of 10 s.
  const T = Math.max(30, seconds(scale)) * 1e6;
  const c = new Cluster({ seed, nodes: names(nodes), link: LINK, flushUs: FLUSH_US, limit: LIMIT });
  c.start();
  for (let i = 0; i < nodes; i++) c.load(`n${i}`, "k", i >= quietFrom ? 10 : 2_000, 0, T);
  c.run(T);
  const admitted = admittedBetween(c, 0, T);
  const ideal = (R * T) / 1e6;
  const lo = -0.01 * ideal;
  const hi = 0.01 * ideal + C + (R * D_US) / 1e6;
  const span = (T - WARM_US) / 1e6;
  const after = admittedBetween(c, WARM_US, T);
  const shares = [...c.nodes.values()].map((n) => admittedBetween(c, 0, T, n.name)).join("/");
  return row(
    name,
    seed,
    admitted - ideal,
    hi,
    "tokens",
    admitted - ideal >= lo && admitted - ideal <= hi,
    `${admitted} admitted in ${T / 1e6}s (r*T = ${ideal}; bound -1% .. +1% + C + r*d); ${(after / span).toFixed(1)}/s after ${WARM_US / 1e6}s warm-up; per replica ${shares}`,
  );
}

export function twoSaturated(seed: number, scale: number): Row[] {
  return [throughput("throughput: 2 saturated, d=100ms", seed, scale, 2, 2)];
}

export function quietReplica(seed: number, scale: number): Row[] {
  return [throughput("trap 2: quiet (10/s) beside saturated", seed, scale, 2, 1)];
}

export function fiveReplicas(seed: number, scale: number): Row[] {
  return [throughput("throughput: 5 saturated", seed, scale, 5, 5)];
}

/**
 * Ten idle replicas burst together every 2 s. Over any window, admitted minus ideal is at most
 * what was consumed elsewhere within d plus one slot's refill; measured per admission as
 * max(-L_true - consumed by others within d_eff), d_eff = flush + delay + jitter.
 */
export function burst(seed: number, scale: number): Row[] {
  const T = seconds(scale, 30) * 1e6;
  const n = 10;
  const c = new Cluster({ seed, nodes: names(n), link: LINK, flushUs: FLUSH_US, limit: LIMIT });
  const read = watchBurst(c, FLUSH_US + LINK.delayUs + LINK.jitterUs);
  c.start();
  let firstBurst = 0;
  for (let t = WARM_US; t + 200_000 < T; t += 2_000_000) {
    for (let i = 0; i < n; i++) c.load(`n${i}`, "hot", 5_000, t, t + 150_000, 0.3);
  }
  c.run(T);
  firstBurst = admittedBetween(c, WARM_US, WARM_US + 150_000);
  const ideal = C + (R * 150_000) / 1e6;
  const { worst, peakDebt } = read();
  const slotRefill = (R * FLUSH_US) / 1e6;
  return [
    row(
      "burst: excess over elsewhere-within-d",
      seed,
      worst,
      slotRefill,
      "tokens",
      worst <= slotRefill,
      `peak debt ${peakDebt.toFixed(0)} tokens; first 150ms burst of 10 idle replicas: ${firstBurst} admitted vs ideal ${ideal} (trap 12: n(C+r*d)); no contended-key mode`,
    ),
  ];
}

/**
 * Three saturated replicas, one of them `skewUs` fast. Global admitted rate within 1% of r; no
 * replica's share drops by more than 1% (relative, against the fair share 1/3); quarantined data
 * counted.
 */
export function skew(label: string, skewUs: number) {
  return (seed: number, scale: number): Row[] => {
    const T = seconds(scale) * 1e6;
    const nodes = [{ name: "n0", skewUs }, { name: "n1" }, { name: "n2" }];
    const c = new Cluster({ seed, nodes, link: LINK, flushUs: FLUSH_US, limit: LIMIT, replica: { warmupTimeoutUs: 5_000_000 } });
    c.start();
    for (const nd of nodes) c.load(nd.name, "k", 2_000, 0, T);
    c.run(T);
    const span = (T - WARM_US) / 1e6;
    const total = admittedBetween(c, WARM_US, T);
    const rateErr = Math.abs(total / span - R) / R;
    let worstDrop = 0;
    const shares: string[] = [];
    for (const nd of nodes) {
      const share = admittedBetween(c, WARM_US, T, nd.name) / total;
      shares.push(`${(share * 100).toFixed(2)}%`);
      worstDrop = Math.max(worstDrop, (1 / 3 - share) / (1 / 3));
    }
    const fast = c.node("n0").replica;
    const correction = fast === undefined ? 0 : fast.stamp(c.raw(c.node("n0"))) - c.now;
    let quarantined = 0;
    for (const nd of c.nodes.values()) quarantined += nd.replica?.stats.quarantinedEntries ?? 0;
    return [
      row(
        `skew ${label}: global rate error`,
        seed,
        rateErr * 100,
        1,
        "%",
        rateErr <= 0.01,
        `${(total / span).toFixed(1)}/s over ${span}s; fast replica's stamping clock ${(correction / 1e3).toFixed(2)}ms from true time; quarantined entries ${quarantined}`,
      ),
      row(
        `skew ${label}: worst share drop`,
        seed,
        worstDrop * 100,
        1,
        "%",
        worstDrop <= 0.01,
        `shares ${shares.join(" ")} (fast replica first)`,
      ),
    ];
  };
}
