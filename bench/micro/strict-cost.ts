// Cost per decision of a strict policy against a local one, measured in the same run through the
// real Limiter and ReplicaBackend: 100-decision batches over 1,000 keys, one decision per virtual
// microsecond, the flush (replica tick and, for strict, every holder's ask and the bank's grants,
// in-process: this replica is the bank) every 5 ms of virtual time. Rounds alternate local and
// strict; the ratio of medians is the figure.
//
//   npx tsx bench/micro/strict-cost.ts [seconds per round, default 2] [rounds, default 3]
//
// Writes bench/results/strict-cost.json and prints a table.

import { mkdirSync, writeFileSync } from "node:fs";
import { DEFAULT_LIMITS, Replica } from "../../src/core/crdt/index.ts";
import { makeRate, type Rate } from "../../src/core/rate.ts";
import { bucketId, Limiter, type ValidDecision } from "../../src/limiter/limiter.ts";
import { ReplicaBackend } from "../../src/mesh/replica-backend.ts";
import { StrictEscrow } from "../../src/mesh/strict-escrow.ts";

const SECONDS = Number(process.argv[2] ?? 2);
const ROUNDS = Number(process.argv[3] ?? 3);
const KEYS = 1_000;
const BATCH = 100;
const START = 1_800_000_000_000_000;
const FLUSH_US = 5_000;
const LEASE_US = 1_000_000;

const made = makeRate({ capacity: 200, refillTokens: 2000, refillPeriodUs: 1_000_000 });
if (!made.ok) throw new Error(made.error.message);
const rate: Rate = made.value;
const ids = Array.from({ length: KEYS }, (_, k) => bucketId("p", `k${k}`));

let hex = 0;
function round(strict: boolean): { perSecond: number; admitted: number } {
  const replica = new Replica({
    node: "b",
    peers: [],
    nowUs: START,
    randomHex: () => (++hex).toString(16).padStart(18, "0"),
    warmupTimeoutUs: 0,
    limits: DEFAULT_LIMITS,
  });
  // Started long before: the bank's start-up wait (L + margin) is over.
  const escrow = new StrictEscrow("b", "b/bench", START - 10 * LEASE_US);
  const policy = { name: "p", rate, ...(strict ? { strict: { bank: "b", leaseUs: LEASE_US } } : {}) };
  const backend = new ReplicaBackend(replica, 1_000_000, undefined, undefined, escrow);
  backend.usePolicies([policy]);
  const limiter = new Limiter(backend);
  const target = strict ? { strict: { bank: "b", leaseUs: LEASE_US } } : {};
  let now = START;
  let lastFlush = now;
  let n = 0;
  let admitted = 0;
  const step = (): void => {
    const decisions: ValidDecision[] = [];
    for (let i = 0; i < BATCH; i++) decisions.push([{ policy: "p", id: ids[(n + i) % KEYS] as string, rate, cost: 1, ...target }]);
    for (const o of limiter.run(decisions, now, true)) if (o.allowed) admitted++;
    n += BATCH;
    now += BATCH;
    if (now - lastFlush >= FLUSH_US) {
      replica.tick(now);
      escrow.flush(now);
      lastFlush = now;
    }
  };
  // Warm-up in virtual time too: a full lease of asks and grants before counting.
  while (now < START + 2 * LEASE_US) step();
  const n0 = n;
  const a0 = admitted;
  const t0 = performance.now();
  while (performance.now() - t0 < SECONDS * 1000) step();
  return { perSecond: (n - n0) / ((performance.now() - t0) / 1000), admitted: (admitted - a0) / (n - n0) };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const local: number[] = [];
const strict: number[] = [];
const admittedShare = { local: 0, strict: 0 };
for (let r = 0; r < ROUNDS; r++) {
  const l = round(false);
  const s = round(true);
  local.push(l.perSecond);
  strict.push(s.perSecond);
  admittedShare.local = l.admitted;
  admittedShare.strict = s.admitted;
}
const usLocal = 1e6 / median(local);
const usStrict = 1e6 / median(strict);
const result = {
  figure: "CPU per decision, strict vs local (same run, in-process, replica is its own bank)",
  keys: KEYS,
  batch: BATCH,
  rounds: ROUNDS,
  secondsPerRound: SECONDS,
  localDecisionsPerSecond: local.map(Math.round),
  strictDecisionsPerSecond: strict.map(Math.round),
  usPerDecision: { local: Number(usLocal.toFixed(3)), strict: Number(usStrict.toFixed(3)) },
  ratio: Number((usStrict / usLocal).toFixed(2)),
  admittedFraction: { local: Number(admittedShare.local.toFixed(3)), strict: Number(admittedShare.strict.toFixed(3)) },
};
mkdirSync(new URL("../results/", import.meta.url), { recursive: true });
writeFileSync(new URL("../results/strict-cost.json", import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
const rows = [
  ["mode", "decisions/s (median)", "us per decision", "admitted"],
  ["local", String(Math.round(median(local))), usLocal.toFixed(3), admittedShare.local.toFixed(3)],
  ["strict", String(Math.round(median(strict))), usStrict.toFixed(3), admittedShare.strict.toFixed(3)],
];
for (const r of rows) process.stdout.write(`${r.map((c, i) => (i === 0 ? c.padEnd(8) : c.padStart(22))).join("")}\n`);
process.stdout.write(`strict / local cost per decision: ${result.ratio}x\n`);
