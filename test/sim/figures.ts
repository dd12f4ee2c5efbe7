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
 * Admissions per second over [from, to) as the least-squares slope of the cumulative count
 * (sampled every `stepUs`). Saturated replicas admit in bursts, one every ~4 one-way delays
 * (all see the refill at once, admit blind for d, then wait out the debt): ~400 tokens per
 * ~400 ms at d = 100 ms. Counting between two instants then measures where they fall in that
 * cycle as much as the rate: one burst more or less is +-2% over 19 s, and moving the window
 * by 100 ms flipped the partition row from -0.5% to +1.45% on an unchanged core. The slope
 * weighs every instant, so the phase drops out (about +-0.02% over the same window shifts).
 */
export function rateByFit(c: Cluster, from: number, to: number, stepUs = 1_000): number {
  const inWindow = c.admissions.filter((a) => a.t >= from && a.t < to).sort((x, y) => x.t - y.t);
  let next = 0;
  let total = 0;
  let n = 0;
  let sx = 0;
  let sy = 0;
  let sxx = 0;
  let sxy = 0;
  for (let t = from; t < to; t += stepUs) {
    for (let a = inWindow[next]; a !== undefined && a.t < t; a = inWindow[++next]) total += a.cost;
    const x = (t - from) / 1e6;
    n += 1;
    sx += x;
    sy += total;
    sxx += x * x;
    sxy += x * total;
  }
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
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
