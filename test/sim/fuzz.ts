// Randomised fault schedules for the convergence property: random topology (a spanning line plus
// random extra links), loss, duplicates, jitter, skews, partitions, kills and restarts, limit
// changes, then quiescence. Every live replica must hold the same canonical state and the same
// level for every key. Used by fuzz.test.ts (few seeds) and `tsx test/sim/fuzz.ts N` (many);
// `tsx test/sim/fuzz.ts N FIRST share` runs the same schedules with share mode on (share.ts).

import { DEFAULT_LIMITS, type KeyState, keyLevelAt, makeKeyConfig } from "../../src/core/crdt/index.ts";
import { Cluster } from "./cluster.ts";
import { Prng } from "./prng.ts";

export interface FuzzOutcome {
  readonly seed: number;
  readonly ok: boolean;
  readonly why: string;
}

export function fuzzOnce(seed: number, seconds = 6, contention: "share" | "local" = "local"): FuzzOutcome {
  const rng = new Prng(seed * 7919 + 13);
  const n = rng.int(2, 5);
  const names = Array.from({ length: n }, (_, i) => `n${i}`);
  const edges: [string, string][] = names.slice(1).map((b, i) => [names[i] as string, b]);
  for (let i = 0; i < n; i++) for (let j = i + 2; j < n; j++) if (rng.chance(0.4)) edges.push([names[i] as string, names[j] as string]);
  const T = seconds * 1e6;
  const c = new Cluster({
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
  });
  c.start();
  const keys = ["a", "b", "c"];
  for (const nm of names) for (const k of keys) if (rng.chance(0.7)) c.load(nm, k, rng.int(5, 3_000), 0, T);
  if (rng.chance(0.6)) {
    const from = rng.int(0, T / 2);
    const cut = names.filter(() => rng.chance(0.5));
    c.partition([cut, names.filter((x) => !cut.includes(x))], from, from + rng.int(100_000, T / 2));
  }
  if (rng.chance(0.5)) {
    const victim = names[rng.int(0, n - 1)] as string;
    const at = rng.int(500_000, T / 2);
    c.kill(victim, at);
    c.restart(victim, at + rng.int(0, 1_000_000));
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
  c.run(T);
  c.quiesce(60_000_000);
  const live = c.live();
  const texts = new Set(live.map((x) => x.replica?.canonical()));
  if (texts.size !== 1) return { seed, ok: false, why: `${texts.size} distinct canonical states among ${live.length}` };
  for (const k of keys) {
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
  return { seed, ok: true, why: "" };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const count = Number(process.argv[2] ?? 50);
  const start = Number(process.argv[3] ?? 1);
  const contention = process.argv[4] === "share" ? "share" : "local";
  let bad = 0;
  for (let s = start; s < start + count; s++) {
    const o = fuzzOnce(s, 6, contention);
    if (!o.ok) {
      bad += 1;
      process.stdout.write(`seed ${s}: ${o.why}\n`);
    }
  }
  process.stdout.write(`${count - bad}/${count} converged\n`);
  if (bad > 0) process.exitCode = 1;
}
