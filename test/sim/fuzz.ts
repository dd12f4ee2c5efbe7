// Randomised fault schedules for the convergence property: random topology (a spanning line plus
// random extra links), loss, duplicates, jitter, skews, partitions, kills and restarts, limit
// changes, then quiescence. Every live replica must hold the same canonical state and the same
// level for every key. Used by fuzz.test.ts (few seeds) and `tsx test/sim/fuzz.ts N` (many);
// `tsx test/sim/fuzz.ts N FIRST share` runs the same schedules with share mode on (share.ts);
// `... strict` adds two strict keys (costs 1-3; strict-cluster.ts: a bank, leases, escrow on the direct
// links of the topology only) beside the local ones, under the same faults, and also requires
// over-admission 0 against C + r(t - s) over every window of each strict key's arrival log;
// `... strict-share` does both.

import { DEFAULT_LIMITS, type KeyState, keyLevelAt, makeKeyConfig } from "../../src/core/crdt/index.ts";
import { Cluster, type ClusterOptions } from "./cluster.ts";
import { Prng } from "./prng.ts";
import { StrictCluster, windowOverAdmission } from "./strict-cluster.ts";

export interface FuzzOutcome {
  readonly seed: number;
  readonly ok: boolean;
  readonly why: string;
  /** Strict admissions in the run (0 without strict keys): how much the window check saw. */
  readonly strictAdmitted?: number;
}

/** Keys in strict mode when the schedule has strict keys (the others stay local or share). */
const STRICT_KEYS = ["s", "t"] as const;

export function fuzzOnce(seed: number, seconds = 6, contention: "share" | "local" = "local", strict = false): FuzzOutcome {
  const rng = new Prng(seed * 7919 + 13);
  const n = rng.int(2, 5);
  const names = Array.from({ length: n }, (_, i) => `n${i}`);
  const edges: [string, string][] = names.slice(1).map((b, i) => [names[i] as string, b]);
  for (let i = 0; i < n; i++) for (let j = i + 2; j < n; j++) if (rng.chance(0.4)) edges.push([names[i] as string, names[j] as string]);
  const T = seconds * 1e6;
  const opts: ClusterOptions = {
    seed,
    nodes: names.map((name) => ({ name, skewUs: rng.chance(0.3) ? rng.int(0, 3_000_000) : 0 })),
    topology: edges,
    link: { delayUs: rng.int(1_000, 80_000), jitterUs: rng.int(0, 40_000), loss: rng.next() * 0.2, duplicate: rng.next() * 0.2 },
    flushUs: 5_000,
    limit: { capacity: rng.int(1, 20), refillTokens: rng.int(10, 2_000), refillPeriodUs: 1_000_000 },
    replica: {
      retireAfterUs: rng.int(300_000, 2_000_000),
      resendAfterUs: rng.int(50_000, 400_000),
      warmupTimeoutUs: 500_000,
      relay: true,
      limits: { ...DEFAULT_LIMITS, policyMax: { capacity: 20, tokensPerSecond: 2_000 } },
      contention,
    },
  };
  // Strict mode's choices come from their own generator, so the schedule's draws (topology,
  // links, loads, faults) are those of the same seed without strict keys.
  const strictRng = new Prng(seed * 104_729 + 29);
  const s = strict
    ? new StrictCluster({ ...opts, leaseUs: strictRng.int(50_000, 1_000_000), bank: names[strictRng.int(0, n - 1)] as string })
    : undefined;
  const c = s?.c ?? new Cluster(opts);
  // Kills, restarts and partitions go through the strict cluster when there is one (its escrow state dies and boots too).
  const faults = s ?? c;
  faults.start();
  const keys = ["a", "b", "c"];
  for (const nm of names) for (const k of keys) if (rng.chance(0.7)) c.load(nm, k, rng.int(5, 3_000), 0, T);
  if (s !== undefined) {
    for (const nm of names) {
      for (const k of STRICT_KEYS) if (strictRng.chance(0.7)) s.load(nm, k, strictRng.int(5, 3_000), 0, T, 0.2, strictRng.int(1, 3));
    }
  }
  if (rng.chance(0.6)) {
    const from = rng.int(0, T / 2);
    const cut = names.filter(() => rng.chance(0.5));
    faults.partition([cut, names.filter((x) => !cut.includes(x))], from, from + rng.int(100_000, T / 2));
  }
  if (rng.chance(0.5)) {
    const victim = names[rng.int(0, n - 1)] as string;
    const at = rng.int(500_000, T / 2);
    faults.kill(victim, at);
    faults.restart(victim, at + rng.int(0, 1_000_000));
  }
  if (rng.chance(0.4)) {
    const at = rng.int(0, T);
    const made = makeKeyConfig(
      { capacity: rng.int(1, 20), refillTokens: rng.int(10, 2_000), refillPeriodUs: 1_000_000 },
      1,
      at + rng.int(-200_000, 200_000),
    );
    if (made.ok) {
      const cfg = made.value;
      const who = names[rng.int(0, n - 1)] as string;
      c.queue.at(at, () => {
        const r = c.node(who).replica;
        r?.consume("a", cfg, 1, c.raw(c.node(who)));
      });
    }
  }
  faults.run(T);
  faults.quiesce(60_000_000);
  const live = c.live();
  const texts = new Set(live.map((x) => x.replica?.canonical()));
  if (texts.size !== 1) return { seed, ok: false, why: `${texts.size} distinct canonical states among ${live.length}` };
  for (const k of s === undefined ? keys : [...keys, ...STRICT_KEYS]) {
    const levels = new Set(
      live.map((x) => {
        const st = x.replica?.keyState(k) as KeyState | undefined;
        if (st === undefined) return "full";
        const level = keyLevelAt(st, T + 1_000).level;
        return level >= st.config.rate.capacityUnits ? "full" : String(level);
      }),
    );
    if (levels.size > 1) return { seed, ok: false, why: `key ${k}: levels ${[...levels].join(", ")}` };
  }
  const rejected = c.rejected;
  if (rejected > 0) return { seed, ok: false, why: `${rejected} deltas rejected between honest replicas: ${c.rejections[0]}` };
  if (s !== undefined) {
    if (s.rejected > 0)
      return { seed, ok: false, why: `${s.rejected} escrow messages rejected between honest replicas: ${s.rejections[0]}` };
    for (const k of STRICT_KEYS) {
      const over = windowOverAdmission(
        s.admissions.filter((a) => a.key === k),
        c.config.rate,
      );
      if (over.tokens > 0)
        return { seed, ok: false, why: `strict key ${k}: over-admitted ${over.tokens} tokens over a window ending at ${over.at} us` };
    }
  }
  return { seed, ok: true, why: "", strictAdmitted: s?.admittedBetween(0, Number.POSITIVE_INFINITY) ?? 0 };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const count = Number(process.argv[2] ?? 50);
  const start = Number(process.argv[3] ?? 1);
  const mode = process.argv[4] ?? "local";
  if (!["local", "share", "strict", "strict-share"].includes(mode))
    throw new Error(`mode must be local, share, strict or strict-share, got ${mode}`);
  const contention = mode.endsWith("share") ? "share" : "local";
  const strict = mode.startsWith("strict");
  let bad = 0;
  let admittedStrict = 0;
  let seedsWithStrict = 0;
  for (let s = start; s < start + count; s++) {
    const o = fuzzOnce(s, 6, contention, strict);
    if (!o.ok) {
      bad += 1;
      process.stdout.write(`seed ${s}: ${o.why}\n`);
    }
    admittedStrict += o.strictAdmitted ?? 0;
    if ((o.strictAdmitted ?? 0) > 0) seedsWithStrict += 1;
    // Progress on stderr every 50 seeds: a run of thousands takes hours on a busy machine.
    if ((s - start + 1) % 50 === 0) process.stderr.write(`${s - start + 1}/${count} seeds done, ${bad} failed\n`);
  }
  const strictLine = strict
    ? `; strict keys: ${admittedStrict} tokens admitted in ${seedsWithStrict} seeds, none over C + r(t - s) in a passing seed`
    : "";
  process.stdout.write(`${count - bad}/${count} converged${strictLine}\n`);
  if (bad > 0) process.exitCode = 1;
}
