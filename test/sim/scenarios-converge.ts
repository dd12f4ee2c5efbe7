// Convergence after quiescence (docs/design.md, section 6) and state size per key.

import { type KeyState, keyLevelAt } from "../../src/core/crdt/index.ts";
import { Cluster, type SimNode } from "./cluster.ts";
import { levelOfAllData, type Row, row } from "./figures.ts";
import { C, FLUSH_US, LIMIT, LINK } from "./scenarios-load.ts";

/**
 * Five replicas on a line (n0-n1-n2-n3-n4: the ends hear each other only through relays), 10%
 * loss, 10% duplicates, 30 ms jitter (reordering), resend after 200 ms without acks (peer
 * timeouts), T_retire = 2 s and a 5 s cut isolating n4 (retirements and renewals on both
 * sides), three keys under hot, moderate and light load. At T everything stops but delivery;
 * then all live replicas must hold byte-equal canonical state, equal levels for every key at
 * every t >= T, and L_all - Lambda <= L <= L_all + Phi.
 */
export function convergence(seed: number, scale: number): Row[] {
  const T = Math.max(12, Math.round(30 * scale)) * 1e6;
  const names = ["n0", "n1", "n2", "n3", "n4"];
  const topology = names.slice(1).map((n, i) => [names[i] as string, n] as const);
  const c = new Cluster({
    seed,
    nodes: names.map((name) => ({ name })),
    topology,
    link: { delayUs: 20_000, jitterUs: 30_000, loss: 0.1, duplicate: 0.1 },
    flushUs: FLUSH_US,
    limit: LIMIT,
    replica: { resendAfterUs: 200_000, retireAfterUs: 2_000_000, warmupTimeoutUs: 1_000_000 },
  });
  c.start();
  const keys = { hot: 1_500, warm: 150, cold: 5 };
  for (const n of names) for (const [k, rate] of Object.entries(keys)) c.load(n, k, rate, 0, T);
  c.partition([["n0", "n1", "n2", "n3"], ["n4"]], T / 3, T / 3 + 5_000_000);
  c.run(T);
  const took = c.quiesce();
  const live = c.live();
  const texts = new Set(live.map((n) => n.replica?.canonical() ?? ""));
  let mismatches = 0;
  let worst = 0;
  let lambda = 0;
  let phi = 0;
  const details: string[] = [];
  const first = live[0]?.replica;
  // No skew here, so stamps are true times: T is the stop time on every replica's clock.
  const tEnd = T;
  for (const key of Object.keys(keys)) {
    const base = first?.keyState(key) as KeyState | undefined;
    mismatches += levelMismatches(live, key, tEnd);
    if (base === undefined) continue;
    const L = keyLevelAt(base, tEnd).level / c.config.rate.unitsPerToken;
    const all = levelOfAllData(c, key, tEnd);

    const below = all - base.prefix.lateCharged - L;
    const above = L - (all + base.prefix.forgiven);
    worst = Math.max(worst, below, above);
    details.push(`${key}: L=${L.toFixed(2)} L_all=${all.toFixed(2)} Λ=${base.prefix.lateCharged} Φ=${base.prefix.forgiven}`);
  }
  for (const n of live) {
    lambda = Math.max(lambda, n.replica?.stats.maxLateCharge ?? 0);
    phi = Math.max(phi, n.replica?.stats.forgivenTotal ?? 0);
  }
  const renewals = live.map((n) => n.replica?.stats.renewals ?? 0).join("/");
  const bytes = Math.max(...live.map((n) => n.replica?.canonical().length ?? 0));
  return [
    row(
      "convergence: distinct canonical states",
      seed,
      texts.size,
      1,
      "states",
      texts.size === 1,
      `${live.length} live replicas on a line, quiet after ${(took / 1e6).toFixed(2)}s; lost ${c.net.lost}, duplicated ${c.net.duplicated}, cut ${c.net.blocked}; renewals ${renewals}; ${bytes} bytes`,
    ),
    row("convergence: level disagreements at t >= T", seed, mismatches, 0, "cases", mismatches === 0, "3 keys x 4 times"),
    row(
      "convergence: L outside [L_all - Λ, L_all + Φ]",
      seed,
      Math.max(0, worst),
      0,
      "tokens",
      worst <= 1e-9,
      `Λ, Φ summed over the key's folds; ${details.join("; ")}`,
    ),
    row(
      "convergence: largest late charge of one fold",
      seed,
      lambda,
      C,
      "tokens",
      lambda <= C,
      `forgiven by the cap, summed over one replica's folds: ${phi} (the cut side's consumption: r x the cut, beyond C)`,
    ),
  ];
}

/**
 * Canonical bytes per key, sampled every 100 ms on every replica: three saturated replicas as a
 * baseline, the same with one replica 1 h fast, and with n1 restarted every 3 s. The bound is
 * the structure's: a prefix, one F row per incarnation the horizon still remembers, and a tail
 * of at most one entry per writer per flush over the longest fold stall (d + the restart gap).
 */
export function stateSize(seed: number, scale: number): Row[] {
  const T = Math.max(10, Math.round(30 * scale)) * 1e6;
  const run = (skewUs: number, restarts: boolean): { max: number; incs: number } => {
    const c = new Cluster({
      seed,
      nodes: [{ name: "n0", skewUs }, { name: "n1" }, { name: "n2" }],
      link: LINK,
      flushUs: FLUSH_US,
      limit: LIMIT,
      replica: { warmupTimeoutUs: 5_000_000 },
    });
    c.start();
    for (const n of ["n0", "n1", "n2"]) c.load(n, "k", 2_000, 0, T);
    if (restarts)
      for (let t = 3_000_000; t < T - 1_000_000; t += 3_000_000) {
        c.kill("n1", t);
        c.restart("n1", t + 500_000);
      }
    let max = 0;
    let incs = 0;
    for (let t = 100_000; t <= T; t += 100_000) {
      c.run(t);
      for (const n of c.live()) {
        max = Math.max(max, n.replica?.keyBytes("k") ?? 0);
        incs = Math.max(incs, n.replica?.keyState("k")?.prefix.F.size ?? 0);
      }
    }
    return { max, incs };
  };
  const base = run(0, false);
  const skewed = run(3_600_000_000, false);
  const restarted = run(0, true);
  // Structural bound: 400 bytes of prefix and config, 60 per F/K row (writers plus incarnations
  // remembered), 50 per tail entry; tail = 3 writers x (restart gap 500 ms + 2 d + 4 flushes) / flush.
  const stallUs = 500_000 + 2 * LINK.delayUs + 4 * FLUSH_US;
  const bound = 400 + 60 * (3 + Math.ceil(T / 3_000_000)) * 2 + 50 * 3 * Math.ceil(stallUs / FLUSH_US);
  const worst = Math.max(base.max, skewed.max, restarted.max);
  return [
    row(
      "state bytes per key (max over runs)",
      seed,
      worst,
      bound,
      "bytes",
      worst <= bound,
      `baseline ${base.max}, 1h skew ${skewed.max}, restart every 3s ${restarted.max} (F rows ${restarted.incs})`,
    ),
  ];
}

/**
 * Of four moments from `t` on (at it, just after, 50 ms, 1 s later), how many at which the live
 * replicas answer different levels for `key` (a replica without the key answers "full").
 */
export function levelMismatches(live: readonly SimNode[], key: string, t: number): number {
  let mismatches = 0;
  for (const at of [t, t + 1, t + 50_000, t + 1_000_000]) {
    const levels = new Set(
      live.map((n) => {
        const k = n.replica?.keyState(key);
        if (k === undefined) return "full";
        const level = keyLevelAt(k, at).level;
        return level >= k.config.rate.capacityUnits ? "full" : String(level);
      }),
    );
    if (levels.size > 1) mismatches += 1;
  }
  return mismatches;
}
