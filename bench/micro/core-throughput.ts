// Decisions per second of the replicated core against the exact single-node store, measured in
// the same run, through the real Limiter (100-decision batches over 10,000 keys, 1M decisions
// per virtual second), plus the cost of the flush timer and delta extraction as the number of
// keys held grows (it must follow what changed, not what is held).
//
//   npx tsx bench/micro/core-throughput.ts [seconds per row, default 3]
//
// Each row builds its own store and drops it before the next (a replica without ticks keeps its
// whole tail, and would slow later rows through the garbage collector). Run with
// `node --expose-gc --import tsx` to collect between rows.

import { DEFAULT_LIMITS, type KeyConfig, makeKeyConfig, Replica } from "../../src/core/crdt/index.ts";
import { makeRate, type Rate } from "../../src/core/rate.ts";
import { BucketStore } from "../../src/limiter/bucket-store.ts";
import { type BucketBackend, bucketId, Limiter, type ValidDecision } from "../../src/limiter/limiter.ts";
import { ReplicaBackend } from "../../src/mesh/replica-backend.ts";
import { viaWire } from "../../test/support/via-wire.ts";

const SECONDS = Number(process.argv[2] ?? 3);
const KEYS = 10_000;
const BATCH = 100;
const START = 1_800_000_000_000_000;
const FLUSH_US = 5_000;

const made = makeRate({ capacity: 2000, refillTokens: 1000, refillPeriodUs: 1_000_000 });
if (!made.ok) throw new Error(made.error.message);
const rate: Rate = made.value;
const ids = Array.from({ length: KEYS }, (_, k) => `k${k}`);

let ids16 = 0;
function replica(node: string, peers: string[]): Replica {
  return new Replica({
    node,
    peers,
    nowUs: START,
    randomHex: () => (++ids16).toString(16).padStart(18, "0"),
    warmupTimeoutUs: 0,
    // The first delta of the flush-cost rows carries every held key at once.
    maxNewKeysPerDelta: 1_000_000,
    limits: { ...DEFAULT_LIMITS, maxKeysPerDelta: 1_000_000 },
  });
}

/** Runs batches for SECONDS of wall time after a short warm-up; `each` runs every FLUSH_US of virtual time. */
function run(store: BucketBackend, each?: (now: number) => void): number {
  const limiter = new Limiter(store);
  let now = START;
  let lastFlush = now;
  let n = 0;
  const step = (): void => {
    const decisions: ValidDecision[] = [];
    for (let i = 0; i < BATCH; i++) {
      const k = (n + i) % KEYS;
      // A fresh id string per decision, as a server decoding requests has.
      decisions.push([{ policy: "p", id: bucketId("p", ids[k] as string), rate, cost: 1 }]);
    }
    limiter.run(decisions, now, true);
    n += BATCH;
    now += BATCH; // 1 decision per virtual microsecond
    if (each !== undefined && now - lastFlush >= FLUSH_US) {
      each(now);
      lastFlush = now;
    }
  };
  const warm = performance.now();
  while (performance.now() - warm < 300) step();
  const n0 = n;
  const t0 = performance.now();
  while (performance.now() - t0 < SECONDS * 1000) step();
  return (n - n0) / ((performance.now() - t0) / 1000);
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

interface Row {
  readonly name: string;
  readonly what: string;
  readonly rate: number;
}

const rows: Row[] = [];
function row(name: string, what: string, measure: () => number): void {
  gc();
  rows.push({ name, what, rate: measure() });
}

row("standalone", "BucketStore: exact single-node buckets", () => run(new BucketStore(1_000_000)));
row("replica (no tick)", "Replica.access/debit only", () => run(new ReplicaBackend(replica("a", []), 1_000_000)));
row("replica (tick 5ms)", "plus Replica.tick every 5 ms (fold, collect)", () => {
  const a = replica("a", []);
  return run(new ReplicaBackend(a, 1_000_000), (now) => a.tick(now));
});
row("replica + peer", "plus deltaFor/applyDelta/applyAck with a peer each 5 ms, both in this thread", () => {
  const a = replica("a", ["b"]);
  const b = replica("b", ["a"]);
  return run(new ReplicaBackend(a, 1_000_000), (now) => {
    a.tick(now);
    b.tick(now);
    exchange(a, b, now);
  });
});

const base = rows[0]?.rate ?? 1;
const fmt = (x: number): string => Math.round(x).toLocaleString("en-US");
console.log(`core throughput: ${BATCH}-decision batches over ${KEYS.toLocaleString("en-US")} keys, ${SECONDS}s per row`);
console.log(`${"row".padEnd(20)} ${"decisions/s".padStart(12)} ${"x standalone".padStart(12)}  what`);
for (const r of rows) console.log(`${r.name.padEnd(20)} ${fmt(r.rate).padStart(12)} ${(r.rate / base).toFixed(3).padStart(12)}  ${r.what}`);
const noTick = rows.find((r) => r.name === "replica (no tick)")?.rate ?? 0;
const tick = rows.find((r) => r.name === "replica (tick 5ms)")?.rate ?? 0;
console.log(`ratio replica/standalone: ${(noTick / base).toFixed(3)} (no tick), ${(tick / base).toFixed(3)} (tick 5ms)`);

/** Both directions of a flush between two replicas in this thread. */
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

// Timer and delta work against keys held: `held` idle keys (not full, so never collected) and
// 100 keys changed between flushes, on two replicas that exchange deltas. The work per flush
// should follow the 100 changed keys, not the keys held.
function flushCost(held: number): number {
  const cfg = mustConfig();
  const a = replica("a", ["b"]);
  const b = replica("b", ["a"]);
  let now = START;
  a.tick(now);
  b.tick(now);
  exchange(a, b, now);
  for (let k = 0; k < held; k++) a.consume(`h${k}`, cfg, 1_000, now); // refills in ~1000 s
  for (let f = 0; f < 3; f++) {
    now += FLUSH_US;
    a.tick(now);
    b.tick(now);
    exchange(a, b, now);
  }
  const flushes = 200;
  const t0 = performance.now();
  for (let f = 0; f < flushes; f++) {
    now += FLUSH_US;
    for (let k = 0; k < 100; k++) a.consume(`c${(f * 100 + k) % 1000}`, cfg, 1, now);
    a.tick(now);
    b.tick(now);
    exchange(a, b, now);
  }
  if (a.keyCount < held || b.keyCount < held) throw new Error("held keys were collected");
  return ((performance.now() - t0) * 1000) / flushes;
}

function mustConfig(): KeyConfig {
  const c = makeKeyConfig({ capacity: 2000, refillTokens: 1, refillPeriodUs: 1_000_000 });
  if (!c.ok) throw new Error(c.error.message);
  return c.value;
}

console.log("");
console.log("flush cost (two replicas: tick, deltaFor, applyDelta, applyAck; 100 keys changed per flush) by keys held:");
flushCost(1_000); // warm-up: compile the flush path before the rows
for (const held of [1_000, 10_000, 100_000]) {
  gc();
  console.log(`${fmt(held).padStart(8)} held   ${flushCost(held).toFixed(1).padStart(9)} us per flush`);
}
