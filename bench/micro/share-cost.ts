// Cost per decision of share mode against local mode, measured in the same run: two replicas in
// this thread, both deciding on the same keys (so every key is contended and in the share
// phase), ticking and exchanging deltas every 5 ms of virtual time, through the real Limiter
// (100-decision batches over KEYS keys, 1 decision per virtual microsecond per replica).
// Rows alternate local, share, local, share, ... so a slow phase of the machine hits both.
//
//   npx tsx bench/micro/share-cost.ts [seconds per row, default 3] [--json]
//
// Prints a table and the ratio share/local (decisions per second); --json prints the rows.

import { DEFAULT_LIMITS, Replica } from "../../src/core/crdt/index.ts";
import { makeRate, type Rate } from "../../src/core/rate.ts";
import { bucketId, Limiter, type ValidDecision } from "../../src/limiter/limiter.ts";
import { ReplicaBackend } from "../../src/mesh/replica-backend.ts";
import { viaWire } from "../../test/support/via-wire.ts";

const SECONDS = Number(process.argv.find((a, i) => i >= 2 && /^\d+(\.\d+)?$/.test(a)) ?? 3);
const JSON_OUT = process.argv.includes("--json");
const KEYS = 1_000;
const BATCH = 100;
const START = 1_800_000_000_000_000;
const FLUSH_US = 5_000;
const ROUNDS = 3;

const made = makeRate({ capacity: 2000, refillTokens: 100_000, refillPeriodUs: 1_000_000 });
if (!made.ok) throw new Error(made.error.message);
const rate: Rate = made.value;
const ids = Array.from({ length: KEYS }, (_, k) => `k${k}`);

let hex = 0;
function replica(node: string, peer: string, contention: "share" | "local"): Replica {
  return new Replica({
    node,
    peers: [peer],
    nowUs: START,
    randomHex: () => (++hex).toString(16).padStart(18, "0"),
    warmupTimeoutUs: 0,
    limits: { ...DEFAULT_LIMITS, policyMax: { capacity: 2000, tokensPerSecond: 100_000 } },
    contention,
  });
}

function exchange(a: Replica, b: Replica, now: number): void {
  for (const [from, to] of [
    [a, b],
    [b, a],
  ] as const) {
    const d = from.deltaFor(to.node, now);
    if (d === undefined) continue;
    const r = to.applyDelta(viaWire(d), now);
    if (!r.ok) throw new Error(r.error.message);
    from.applyAck(r.value, now);
  }
}

/** Decisions per second (both replicas together) for SECONDS of wall time after a 300 ms warm-up. */
function measure(contention: "share" | "local"): { rate: number; phase: string } {
  const a = replica("a", "b", contention);
  const b = replica("b", "a", contention);
  const limiters = [new Limiter(new ReplicaBackend(a, 1_000_000)), new Limiter(new ReplicaBackend(b, 1_000_000))];
  let now = START;
  let lastFlush = now;
  let n = 0;
  const step = (): void => {
    for (const limiter of limiters) {
      const decisions: ValidDecision[] = [];
      for (let i = 0; i < BATCH; i++) decisions.push([{ policy: "p", id: bucketId("p", ids[(n + i) % KEYS] as string), rate, cost: 1 }]);
      limiter.run(decisions, now, true);
    }
    n += BATCH;
    now += BATCH;
    if (now - lastFlush >= FLUSH_US) {
      a.tick(now);
      b.tick(now);
      exchange(a, b, now);
      lastFlush = now;
    }
  };
  const warm = performance.now();
  while (performance.now() - warm < 300) step();
  const n0 = n;
  const t0 = performance.now();
  while (performance.now() - t0 < SECONDS * 1000) step();
  const perSecond = (2 * (n - n0)) / ((performance.now() - t0) / 1000);
  return { rate: perSecond, phase: a.shareOf(bucketId("p", "k0"))?.phase ?? "none" };
}

const rows: { mode: string; round: number; decisionsPerSecond: number; phase: string }[] = [];
for (let round = 1; round <= ROUNDS; round++) {
  for (const mode of ["local", "share"] as const) {
    const m = measure(mode);
    rows.push({ mode, round, decisionsPerSecond: Math.round(m.rate), phase: m.phase });
  }
}
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
const local = median(rows.filter((r) => r.mode === "local").map((r) => r.decisionsPerSecond));
const share = median(rows.filter((r) => r.mode === "share").map((r) => r.decisionsPerSecond));
const summary = { keys: KEYS, batch: BATCH, secondsPerRow: SECONDS, localPerSecond: local, sharePerSecond: share, ratio: share / local };
if (JSON_OUT) {
  console.log(JSON.stringify({ rows, summary }, null, 2));
} else {
  console.log(`share-mode cost: 2 replicas, ${KEYS} contended keys, ${BATCH}-decision batches, ${SECONDS}s per row`);
  console.log(`${"mode".padEnd(6)} ${"round".padStart(5)} ${"decisions/s".padStart(12)}  phase of k0 at a`);
  for (const r of rows)
    console.log(
      `${r.mode.padEnd(6)} ${String(r.round).padStart(5)} ${r.decisionsPerSecond.toLocaleString("en-US").padStart(12)}  ${r.phase}`,
    );
  console.log(
    `median: local ${local.toLocaleString("en-US")}/s, share ${share.toLocaleString("en-US")}/s, ratio share/local ${(share / local).toFixed(3)}`,
  );
}
