// Relays per region (docs/design.md, "Relays per region"): three regions of one, two or three
// replicas, links inside a region direct (no base delay), links between regions 40 ms one way;
// each replica elects a relay per region from the peers it can reach (forwarding.ts) and a link
// counts as down after LINK_DOWN_US without reaching the peer. Rows: the lattice laws on states
// the regional lanes produce, convergence with relays killed and cut off mid-run (failover), the
// longest pause of a region's data reaching another region across a failover, the hot-key
// accuracy and cross-region lag of a 3x3 run, and bytes crossing regions per decision at 3x1,
// 3x2 and 3x3 (counted with the real codec on cross-region links only, regions.ts).

import { foldKey, joinKey, type KeyState, keyLevelAt, keyText } from "../../src/core/crdt/index.ts";
import { stateOf } from "../support/replica-state.ts";
import { Cluster } from "./cluster.ts";
import { admittedBetween, type Row, row } from "./figures.ts";
import { Prng } from "./prng.ts";
import type { Scenario } from "./scenarios.ts";
import { levelMismatches } from "./scenarios-converge.ts";
import { C, FLUSH_US, LIMIT, R } from "./scenarios-load.ts";

const REGIONS = ["a", "b", "c"] as const;
export const CROSS_US = 40_000;
/** What a transport's keepalive takes to call a silent link down (the bound on a relay outage). */
export const LINK_DOWN_US = 200_000;
/** Inside a region: no base delay, a little jitter. */
export const LOCAL = { delayUs: 0, jitterUs: 500, loss: 0, duplicate: 0 };

export function layout(perRegion: number): { names: string[]; regionOf: Map<string, string> } {
  const names: string[] = [];
  const regionOf = new Map<string, string>();
  for (const r of REGIONS)
    for (let i = 1; i <= perRegion; i++) {
      names.push(`${r}${i}`);
      regionOf.set(`${r}${i}`, r);
    }
  return { names, regionOf };
}

export function regionCluster(
  seed: number,
  perRegion: number,
  extra: { flood?: boolean; link?: typeof LOCAL; replica?: ConstructorParameters<typeof Cluster>[0]["replica"] } = {},
): { c: Cluster; names: string[] } {
  const { names, regionOf } = layout(perRegion);
  const c = new Cluster({
    seed,
    nodes: names.map((name) => ({ name })),
    link: extra.link ?? LOCAL,
    flushUs: FLUSH_US,
    limit: LIMIT,
    // Relays replace flooding: a replica relays nothing on its own (lanes say what crosses).
    replica: { relay: extra.flood === true, ...extra.replica },
    regions: { regionOf, crossDelayUs: CROSS_US, linkDownAfterUs: LINK_DOWN_US, flood: extra.flood },
  });
  return { c, names };
}

/**
 * The join laws and the fold law on key states sampled from every replica of a lossy 3x3 run
 * with relays (what the regional lanes actually produce, resends and failovers included).
 */
export function relayLaws(seed: number, scale: number): Row[] {
  const T = Math.max(3, Math.round(8 * scale)) * 1e6;
  const { c, names } = regionCluster(seed, 3, {
    link: { delayUs: 0, jitterUs: 3_000, loss: 0.05, duplicate: 0.05 },
    replica: { retireAfterUs: 1_000_000, forgetAfterUs: 2_000_000, resendAfterUs: 100_000 },
  });
  c.start();
  for (const n of names) c.load(n, "k", n.endsWith("1") ? 1_500 : 300, 0, T);
  c.kill("a1", T / 3);
  c.restart("a1", T / 2);
  const samples: KeyState[] = [];
  for (let t = 250_000; t <= T; t += 250_000) {
    c.run(t);
    for (const n of c.live()) {
      const k = n.replica?.keyState("k");
      if (k !== undefined) samples.push(k);
    }
  }
  const rng = new Prng(seed * 31 + 7);
  const cases = Math.max(200, Math.round(1_000 * scale));
  const pick = (): KeyState => samples[rng.int(0, samples.length - 1)] as KeyState;
  let comm = 0;
  let assoc = 0;
  let idem = 0;
  let fold = 0;
  for (let i = 0; i < cases; i++) {
    const a = pick();
    const b = pick();
    const x = pick();
    if (keyText(joinKey(a, b)) !== keyText(joinKey(b, a))) comm += 1;
    if (keyText(joinKey(joinKey(a, b), x)) !== keyText(joinKey(a, joinKey(b, x)))) assoc += 1;
    if (keyText(joinKey(a, a)) !== keyText(a)) idem += 1;
    const target = a.prefix.tau + rng.int(0, 50_000);
    const f = foldKey(a, target);
    if (keyText(joinKey(a, f)) !== keyText(f) || keyLevelAt(f, target + 1_000).level !== keyLevelAt(a, target + 1_000).level) fold += 1;
  }
  const detail = `${cases} cases on ${samples.length} states sampled every 250 ms from a 3x3 run with relays, 5% loss, 5% duplicates, relay a1 killed and restarted`;
  return [
    row("relays: laws: join commutative", seed, comm, 0, "violations", comm === 0, detail),
    row("relays: laws: join associative", seed, assoc, 0, "violations", assoc === 0, detail),
    row("relays: laws: join idempotent", seed, idem, 0, "violations", idem === 0, detail),
    row("relays: laws: join(S, fold(S)) = fold(S), equal levels after", seed, fold, 0, "violations", fold === 0, detail),
  ];
}

/** Longest time in [from, to) with no delta carrying key data delivered from region `src` to any other region. */
function longestSilence(times: readonly number[], from: number, to: number): number {
  let last = from;
  let worst = 0;
  for (const t of times) {
    if (t < from) continue;
    if (t >= to) break;
    worst = Math.max(worst, t - last);
    last = t;
  }
  return Math.max(worst, to - last);
}

/**
 * 3x3 with loss, duplicates and jitter; relay a1 killed at T/4 and restarted at T/2, relay b1
 * cut off from everyone for 3 s from T/3 (inside T_retire, so no renewal is forced). Then
 * everything stops but delivery: all live replicas must hold byte-equal state and equal levels.
 * Also the longest pause of region a's data reaching other regions around a1's death: the link-
 * down detection time plus a flush or two is the bound on a relay outage.
 */
export function relayFailover(seed: number, scale: number): Row[] {
  const T = Math.max(8, Math.round(24 * scale)) * 1e6;
  const { c, names } = regionCluster(seed, 3, {
    link: { delayUs: 0, jitterUs: 5_000, loss: 0.05, duplicate: 0.05 },
    replica: { resendAfterUs: 200_000, warmupTimeoutUs: 1_000_000 },
  });
  const arrivals: number[] = [];
  c.onApplied = (to, from, keys) => {
    if (keys > 0 && c.regions?.region(from) === "a" && c.regions.region(to.name) !== "a") arrivals.push(c.now);
  };
  c.start();
  const keys = { hot: 1_000, warm: 100, cold: 5 };
  for (const n of names) for (const [k, rate] of Object.entries(keys)) c.load(n, k, rate, 0, T);
  const killAt = Math.round(T / 4);
  c.kill("a1", killAt);
  c.restart("a1", Math.round(T / 2));
  c.partition([["b1"], names.filter((n) => n !== "b1")], Math.round(T / 3), Math.round(T / 3) + 3_000_000);
  c.run(T);
  const took = c.quiesce();
  const live = c.live();
  const texts = new Set(live.map((n) => n.replica?.canonical() ?? ""));
  let mismatches = 0;
  for (const key of Object.keys(keys)) mismatches += levelMismatches(live, key, T);
  const gap = longestSilence(arrivals, killAt - 1_000_000, killAt + 2_000_000);
  // Some replica of a must notice a1 down, then its next flush sends; one more flush for the
  // delta to land in a tick of the receiver's, plus the link's delay and jitter.
  const gapBound = LINK_DOWN_US + 2 * FLUSH_US + CROSS_US + 5_000;
  const perLink = c.regions === undefined ? "" : linkSummary(c);
  return [
    row(
      "relays: failover: distinct canonical states",
      seed,
      texts.size,
      1,
      "states",
      texts.size === 1,
      `${live.length} live replicas, 3 regions x 3, quiet after ${(took / 1e6).toFixed(2)}s; lost ${c.net.lost}, duplicated ${c.net.duplicated}, cut ${c.net.blocked}; relay changes ${c.regions?.relayChanges}`,
    ),
    row("relays: failover: level disagreements at t >= T", seed, mismatches, 0, "cases", mismatches === 0, "3 keys x 4 times"),
    row(
      "relays: failover: longest pause of a's data reaching b, c",
      seed,
      gap / 1000,
      gapBound / 1000,
      "ms",
      gap <= gapBound,
      `around the kill of relay a1 at ${killAt / 1e6}s (window -1 s .. +2 s); bound = link-down detection ${LINK_DOWN_US / 1000} ms + 2 flushes + one-way ${CROSS_US / 1000} ms + jitter; ${perLink}`,
    ),
  ];
}

/** Cross-region links that carried more than 1% of the cross-region bytes. */
function linkSummary(c: Cluster): string {
  const r = c.regions;
  if (r === undefined) return "";
  const busy = [...r.perLink].filter(([, b]) => b > r.crossBytes / 100).map(([l]) => l);
  return `links carrying >1% of cross-region bytes: ${busy.length} (${busy.join(" ")})`;
}

interface LoadRun {
  readonly c: Cluster;
  readonly admitted: number;
  readonly lagP99: number;
  readonly lagSamples: number;
}

/**
 * Every replica saturates the hot key at 2,000/s (r = 1,000/s for the whole mesh). Lag: for every
 * 5th admission, the time until each replica of another region knows that writer's running
 * total (consumedBy after a delta it applied).
 */
function hotRun(seed: number, perRegion: number, T: number, flood: boolean): LoadRun {
  const { c, names } = regionCluster(seed, perRegion, { flood });
  const pending = new Map<string, { t: number; total: number }[]>(); // writer inc -> checkpoints
  const cursor = new Map<string, number>(); // `${reader}|${inc}` -> next checkpoint index
  const lags: number[] = [];
  let count = 0;
  c.onAdmit = (a) => {
    if (a.t < 2_000_000 || count++ % 5 !== 0) return;
    const n = c.node(a.node).replica;
    if (n === undefined) return;
    const total = stateOf(n).counters.get(a.key) ?? 0;
    let list = pending.get(a.inc);
    if (list === undefined) {
      list = [];
      pending.set(a.inc, list);
    }
    list.push({ t: a.t, total });
  };
  const writerNode = new Map<string, string>();
  c.onApplied = (to) => {
    const known = to.replica?.consumedBy("k");
    if (known === undefined) return;
    for (const [inc, list] of pending) {
      const writer = writerNode.get(inc);
      if (writer === undefined || c.regions?.region(writer) === c.regions?.region(to.name)) continue;
      const have = known.get(inc) ?? 0;
      const at = `${to.name}|${inc}`;
      let i = cursor.get(at) ?? 0;
      while (i < list.length && (list[i] as { total: number }).total <= have) {
        lags.push(c.now - (list[i] as { t: number }).t);
        i += 1;
      }
      cursor.set(at, i);
    }
  };
  c.start();
  for (const n of names) {
    const inc = c.node(n).replica?.incarnation;
    if (inc !== undefined) writerNode.set(inc, n);
  }
  for (const n of names) c.load(n, "k", 2_000, 0, T);
  // Incarnations renewed after start: map them as they first admit.
  const prevAdmit = c.onAdmit;
  c.onAdmit = (a) => {
    writerNode.set(a.inc, a.node);
    prevAdmit?.(a);
  };
  c.run(T);
  lags.sort((x, y) => x - y);
  const p99 = lags.length === 0 ? Number.NaN : (lags[Math.min(lags.length - 1, Math.floor(lags.length * 0.99))] as number);
  return { c, admitted: admittedBetween(c, 0, T), lagP99: p99, lagSamples: lags.length };
}

/** Hot-key accuracy and cross-region lag at 3x3 with relays. */
export function relayAccuracy(seed: number, scale: number): Row[] {
  const T = Math.max(10, Math.round(30 * scale)) * 1e6;
  const run = hotRun(seed, 3, T, false);
  // The ideal bucket admits C + r*T over the run (it starts full).
  const ideal = C + (R * T) / 1e6;
  const err = (run.admitted - ideal) / ideal;
  const lagBound = CROSS_US + 2 * FLUSH_US + 10_000;
  const shares = [...run.c.nodes.values()].map((n) => admittedBetween(run.c, 0, T, n.name)).join("/");
  return [
    row(
      "relays: 3x3 hot key, admitted vs ideal",
      seed,
      err * 100,
      2,
      "%",
      Math.abs(err) <= 0.02,
      `${run.admitted} admitted in ${T / 1e6}s, ideal C + r*T = ${ideal}; all 9 saturated at 2,000/s; per replica ${shares}`,
    ),
    row(
      "relays: 3x3 lag p99 across regions",
      seed,
      run.lagP99 / 1000,
      lagBound / 1000,
      "ms",
      run.lagP99 <= lagBound,
      `${run.lagSamples} samples (every 5th admission after 2 s, each reader in another region); bound one-way ${CROSS_US / 1000} ms + 2 flushes + 10 ms`,
    ),
  ];
}

/**
 * Bytes crossing regions per admitted decision under light load (no key limited): 3 regions x
 * 1, 2, 3 replicas, 1,500 decisions/s in all over 30 keys, spread evenly over the replicas.
 * With relays the figure must not grow with the replicas per region; flooding is shown too.
 */
export function relayBytes(seed: number, scale: number): Row[] {
  const T = Math.max(3, Math.round(10 * scale)) * 1e6;
  // After the first sync (full state both ways), which is not a per-decision cost.
  const WARM = 1_000_000;
  const perDecision = (perRegion: number, flood: boolean): number => {
    const { c, names } = regionCluster(seed, perRegion, { flood });
    c.start();
    const keys = 30;
    const each = 1_500 / names.length / keys;
    for (const n of names) for (let k = 0; k < keys; k++) c.load(n, `u${k}`, each, 0, T);
    c.run(WARM);
    const before = c.regions?.crossBytes ?? 0;
    c.run(T);
    return ((c.regions?.crossBytes ?? 0) - before) / admittedBetween(c, WARM, T);
  };
  const relay = [1, 2, 3].map((n) => perDecision(n, false));
  // The flooding baseline (today's full mesh) only at full size: 3x3 flooding is the slow part.
  const flood = scale >= 1 ? [1, 2, 3].map((n) => perDecision(n, true)) : [];
  const [r1, r2, r3] = relay as [number, number, number];
  const ratio = r3 / r1;
  const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(1)).join(" / ");
  const bound = 1.2 * r1;
  const flat = `must not grow with replicas per region: at most 1.2 x the 3x1 figure (${bound.toFixed(1)})`;
  return [
    row(
      "relays: cross-region bytes per decision, 3x1",
      seed,
      r1,
      r1,
      "bytes",
      true,
      `light load, 1,500 decisions/s over 30 keys, ${(T - WARM) / 1e6}s after a 1 s warm-up; deltas and acks on cross-region links, real codec`,
    ),
    row("relays: cross-region bytes per decision, 3x2", seed, r2, bound, "bytes", r2 <= bound, flat),
    row("relays: cross-region bytes per decision, 3x3", seed, r3, bound, "bytes", r3 <= bound, flat),
    row(
      "relays: cross-region bytes per decision, 3x3 / 3x1",
      seed,
      ratio,
      1.2,
      "ratio",
      ratio <= 1.2,
      `relays 3x1 / 3x2 / 3x3: ${fmt(relay)} bytes; ${
        flood.length === 3
          ? `flooding (every replica to every other, relay on): ${fmt(flood)} bytes (3x3 / 3x1 = ${((flood[2] as number) / (flood[0] as number)).toFixed(2)})`
          : "flooding baseline: npm run sim (full size) only"
      }`,
    ),
  ];
}

/** The relay scenarios, one entry each in SCENARIOS (scenarios.ts). */
export const RELAY_SCENARIOS: readonly Scenario[] = [
  { name: "relay-laws", run: relayLaws },
  { name: "relay-failover", run: relayFailover },
  { name: "relay-accuracy", run: relayAccuracy },
  { name: "relay-bytes", run: relayBytes, simOnly: true },
];
