// Figures computed from a cluster's record: rates after warm-up, the burst excess against
// what was consumed elsewhere within d, lock-out gaps, and the level of all data replayed at once.

import type { Admission, Cluster } from "./cluster.ts";

export interface Row {
  readonly scenario: string;
  readonly figure: number;
  readonly bound: number;
  readonly unit: string;
  readonly pass: boolean;
  readonly detail: string;
  readonly seed: number;
}

export function row(scenario: string, seed: number, figure: number, bound: number, unit: string, pass: boolean, detail = ""): Row {
  return { scenario, figure: round(figure), bound: round(bound), unit, pass, detail, seed };
}

export function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export function admittedBetween(c: Cluster, from: number, to: number, node?: string): number {
  let n = 0;
  for (const a of c.admissions) if (a.t >= from && a.t < to && (node === undefined || a.node === node)) n += a.cost;
  return n;
}

/**
 * Streams the burst figure: after each admission at replica ρ, the true global level's debt
 * (-L_true) minus what other replicas admitted within the last `dEffUs` (ρ could not have seen
 * it). The design bound is one slot's refill. Returns a reader for the running maximum.
 */
export function watchBurst(c: Cluster, dEffUs: number): () => { worst: number; peakDebt: number } {
  const recent: Admission[] = [];
  const perNode = new Map<string, number>();
  let total = 0;
  let worst = Number.NEGATIVE_INFINITY;
  let peakDebt = 0;
  c.onAdmit = (a) => {
    recent.push(a);
    perNode.set(a.node, (perNode.get(a.node) ?? 0) + a.cost);
    total += a.cost;
    while (recent.length > 0 && (recent[0] as Admission).t <= a.t - dEffUs) {
      const old = recent.shift() as Admission;
      perNode.set(old.node, (perNode.get(old.node) ?? 0) - old.cost);
      total -= old.cost;
    }
    const elsewhere = total - (perNode.get(a.node) ?? 0);
    const debt = Math.max(0, -a.trueLevel);
    peakDebt = Math.max(peakDebt, debt);
    worst = Math.max(worst, debt - elsewhere);
  };
  return () => ({ worst, peakDebt });
}

/** Longest time without an admission at `node` within [from, to). */
export function maxGap(c: Cluster, node: string, from: number, to: number): number {
  let last = from;
  let gap = 0;
  for (const a of c.admissions) {
    if (a.node !== node || a.t < from || a.t >= to) continue;
    gap = Math.max(gap, a.t - last);
    last = a.t;
  }
  return Math.max(gap, to - last);
}

/** Level (tokens) of one key with every admission replayed at its slot, in time order (debt allowed). */
export function levelOfAllData(c: Cluster, key: string, at: number): number {
  const rate = c.config.rate;
  const list = c.admissions.filter((a) => a.key === key).sort((x, y) => x.slot - y.slot);
  let level = rate.capacityUnits;
  let t = 0;
  const refill = (to: number): void => {
    if (to <= t) return;
    const gap = rate.capacityUnits - level;
    level = gap <= 0 ? level : to - t >= Math.ceil(gap / rate.unitsPerMicro) ? rate.capacityUnits : level + (to - t) * rate.unitsPerMicro;
    t = to;
  };
  for (const a of list) {
    if (a.slot > at) break;
    refill(a.slot);
    level -= a.cost * rate.unitsPerToken;
  }
  refill(at);
  return level / rate.unitsPerToken;
}
