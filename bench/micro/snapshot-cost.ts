// What snapshots cost at 1M keys (issue 15): for a mesh replica and a standalone one holding
// N keys that are not full, the first (base) write, an increment after 1% of the keys changed,
// and the load at start. Through the real code: the scheduler, the directory, the files
// (fsynced, on the machine's temp file system) and the start-up loader.
//
//   node --expose-gc --import tsx bench/micro/snapshot-cost.ts [keys, default 1000000]
//
// Columns: "loop ms" is time spent building chunks on the event loop (the CPU a write takes
// from request handling), "longest turn" the longest single stretch of it (how long a call can
// wait behind a snapshot), "CPU ms" the process's CPU over the write (all threads: encoding,
// checksums, the file system's thread pool), "wall ms" until the directory was fsynced. A
// timer probe every 5 ms during the write measures the event-loop lag requests would see.
// Writes bench/results/snapshot-cost.json.

import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { makeKeyConfig, Replica } from "../../src/core/crdt/index.ts";
import { makeRate } from "../../src/core/rate.ts";
import { BucketStore } from "../../src/limiter/bucket-store.ts";
import { openBucketPersistence, openReplicaPersistence } from "../../src/snapshot/persistence.ts";
import type { SnapshotScheduler } from "../../src/snapshot/snapshot-scheduler.ts";

const N = Number(process.argv[2] ?? 1_000_000);
const START = 1_800_000_000_000_000;
const log = pino({ level: "silent" });
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
let now = START;
const clock = (): number => now;

interface Row {
  readonly row: string;
  readonly keys: number;
  readonly loopMs: number;
  readonly longestTurnMs: number;
  readonly cpuMs: number;
  readonly wallMs: number;
  readonly maxLagMs: number;
  readonly bytes: number;
}

async function measureWrite(row: string, keys: number, scheduler: SnapshotScheduler): Promise<Row> {
  gc();
  let maxLag = 0;
  let last = performance.now();
  const probe = setInterval(() => {
    const t = performance.now();
    maxLag = Math.max(maxLag, t - last - 5);
    last = t;
  }, 5);
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  const writes = scheduler.stats.writesOk;
  await scheduler.writeNow();
  const wallMs = performance.now() - t0;
  const used = process.cpuUsage(cpu);
  clearInterval(probe);
  const s = scheduler.stats;
  // Nothing to write (only watermarks moved): no file, so the last write's figures are not this row's.
  if (s.writesOk === writes)
    return {
      row: `${row} (no file written)`,
      keys,
      loopMs: 0,
      longestTurnMs: 0,
      cpuMs: (used.user + used.system) / 1000,
      wallMs,
      maxLagMs: Math.max(0, maxLag),
      bytes: 0,
    };
  return {
    row,
    keys,
    loopMs: s.lastBuildMs,
    longestTurnMs: s.lastLongestTurnMs,
    cpuMs: (used.user + used.system) / 1000,
    wallMs,
    maxLagMs: Math.max(0, maxLag),
    bytes: s.lastBytes,
  };
}

function loadRow(row: string, keys: number, open: () => unknown): Row {
  gc();
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  open();
  const wallMs = performance.now() - t0;
  const used = process.cpuUsage(cpu);
  const cpuMs = (used.user + used.system) / 1000;
  return { row, keys, loopMs: wallMs, longestTurnMs: wallMs, cpuMs, wallMs, maxLagMs: 0, bytes: 0 };
}

const options = (dataDir: string, kind: "mesh" | "standalone") => ({
  dataDir,
  intervalMs: 1_000,
  identity: { kind, node: "bench", cluster: kind === "mesh" ? "bench" : "" },
  clock,
  log,
});

async function mesh(dir: string): Promise<Row[]> {
  let ids = 0;
  const replica = (): Replica =>
    new Replica({ node: "bench", peers: [], nowUs: now, randomHex: () => (++ids).toString(16).padStart(18, "0"), maxNewKeysPerDelta: 1e9 });
  const made = makeKeyConfig({ capacity: 100, refillTokens: 1, refillPeriodUs: 1_000_000 });
  if (!made.ok) throw new Error(made.error.message);
  const cfg = made.value;
  const r = replica();
  const key = (i: number): string => `api\u0000tenant-${i}`;
  // Every key debited, then folded by the ticks: a prefix per key, as a replica holds after load.
  for (let i = 0; i < N; i++) {
    r.consume(key(i), cfg, 5, now);
    if (i % 1000 === 999) now += 1000;
    if (i % 50_000 === 49_999) r.tick(now);
  }
  now += 10_000;
  r.tick(now);
  const dataDir = join(dir, "mesh");
  mkdirSync(dataDir);
  const scheduler = openReplicaPersistence(options(dataDir, "mesh"), r, () => {});
  const rows = [await measureWrite("mesh: base", r.keyCount, scheduler)];
  for (let i = 0; i < N / 100; i++) r.consume(key(i * 100), cfg, 1, now);
  now += 10_000;
  r.tick(now);
  rows.push(await measureWrite("mesh: increment, 1% of keys changed", N / 100, scheduler));
  now += 10_000;
  r.tick(now);
  rows.push(await measureWrite("mesh: increment, nothing but watermarks", 0, scheduler));
  const held = r.keyCount;
  rows.push(
    loadRow("mesh: load at start (base + the increments written)", held, () =>
      openReplicaPersistence(options(dataDir, "mesh"), replica(), () => {}),
    ),
  );
  return rows;
}

async function standalone(dir: string): Promise<Row[]> {
  const made = makeRate({ capacity: 100, refillTokens: 1, refillPeriodUs: 1_000_000 });
  if (!made.ok) throw new Error(made.error.message);
  const rate = made.value;
  const store = new BucketStore(N + 1);
  for (let i = 0; i < N; i++) store.access(`api\u0000tenant-${i}`, rate, 5, now).debit(5 * rate.unitsPerToken);
  const dataDir = join(dir, "standalone");
  mkdirSync(dataDir);
  const scheduler = openBucketPersistence(options(dataDir, "standalone"), store);
  const rows = [await measureWrite("standalone: base", store.size, scheduler)];
  for (let i = 0; i < N / 100; i++) store.access(`api\u0000tenant-${i * 100}`, rate, 1, now).debit(rate.unitsPerToken);
  rows.push(await measureWrite("standalone: increment, 1% of keys changed", N / 100, scheduler));
  rows.push(
    loadRow("standalone: load at start (base + 1 increment)", N, () =>
      openBucketPersistence(options(dataDir, "standalone"), new BucketStore(N + 1)),
    ),
  );
  return rows;
}

const dir = mkdtempSync(join(tmpdir(), "tokenmesh-snapshot-bench-"));
const rows = [...(await mesh(dir)), ...(await standalone(dir))];
const fmt = (n: number): string => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
console.log(`snapshot cost, ${N.toLocaleString("en")} keys held (${dir})`);
console.log("| row | keys written | loop ms | longest turn ms | CPU ms | wall ms | max timer lag ms | bytes |");
console.log("|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  console.log(
    `| ${r.row} | ${r.keys.toLocaleString("en")} | ${fmt(r.loopMs)} | ${fmt(r.longestTurnMs)} | ${fmt(r.cpuMs)} | ${fmt(r.wallMs)} | ${fmt(r.maxLagMs)} | ${r.bytes.toLocaleString("en")} |`,
  );
}
mkdirSync(new URL("../results/", import.meta.url), { recursive: true });
writeFileSync(new URL("../results/snapshot-cost.json", import.meta.url), `${JSON.stringify({ keys: N, rows }, null, 2)}\n`);
