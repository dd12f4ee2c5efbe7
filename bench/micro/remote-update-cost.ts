// CPU to apply one remote key update: the bytes of a Merge delta that carries one key changed by
// one writer (its new entry and the writer's watermark record), as a peer stream hands them over,
// decoded (delta-wire.ts), validated and joined (Replica.applyDelta: validateDelta, then the join
// and the ack). The replication bench's per-update row runs this pinned to the service core and
// compares it with the CPU of one decision of a standalone replica in the same run.
//
//   npx tsx bench/micro/remote-update-cost.ts [updates, default 20000] [keys per delta, default 1]
//
// With more than one key per delta (what a loaded link carries: one delta per flush), the figure
// is per key update, the delta's own parts (header, registry) shared among its keys.
// Prints `RESULT {json}`: microseconds of process CPU (user + system) per update for the whole
// apply, and for decoding alone and decoding plus validation on the same bytes (the join is the
// rest). The stream is made once, before any timing, by a real writer replica (one consume, one
// tick, one delta per update, acknowledged by a first receiver as a peer would); each timed pass
// replays it into a fresh receiver, over 10,000 keys of the bench policy, about two updates per
// key, the receiver's clock following the writer's. The receiver does not tick (folding is the
// flush timer's work, not the apply's), and the passes alternate, best of REPEATS each.
//
// The same run also times the baseline the target is set against, one local decision of a
// standalone replica at 100 decisions per call (standalone-decision-cost.ts: decoder, decision
// service, encoder, in process; without grpc-js, so it is the smaller baseline), its passes
// alternating with the others, and prints `ratio` = applyUs / decisionUs (target <= 0.5).

import { DEFAULT_LIMITS, KnownLimits, makeKeyConfig, Replica, validateDelta } from "../../src/core/crdt/index.ts";
import { bucketId } from "../../src/limiter/limiter.ts";
import { encodeDeltaRequest, readDeltaRequest } from "../../src/mesh/delta-wire.ts";
import { keyName } from "../lib/keys.ts";
import { BENCH_POLICY } from "../lib/targets.ts";
import { decisionBodies, decisionPass } from "./standalone-decision-cost.ts";

const UPDATES = Number(process.argv[2] ?? 20_000);
const PER_DELTA = Number(process.argv[3] ?? 1);
const KEYS = 10_000;
const START = 1_800_000_000_000_000;
const FLUSH_US = 5_000;
const REPEATS = 5;
/** Calls of 100 decisions per baseline pass. */
const BASELINE_CALLS = 1_000;

export interface UpdateCost {
  readonly updates: number;
  readonly keysPerDelta: number;
  /** us of CPU per update, each the best of REPEATS passes. */
  readonly applyUs: number;
  readonly decodeUs: number;
  readonly decodeValidateUs: number;
  /** Updates the receiver refused (must be 0 for the figure to mean anything). */
  readonly refused: number;
  readonly bytesPerUpdate: number;
  /** us of CPU per standalone decision at 100 per call, in process, best of REPEATS passes of this run. */
  readonly decisionUs: number;
  /** applyUs / decisionUs. */
  readonly ratio: number;
}

const made = makeKeyConfig({
  capacity: BENCH_POLICY.capacity,
  refillTokens: BENCH_POLICY.refillTokens,
  refillPeriodUs: BENCH_POLICY.refillPeriodMs * 1000,
});
if (!made.ok) throw new Error(made.error.message);
const config = made.value;
// The bench's replicas bound peers' counts by 10x their largest policy (mesh-node.ts, policyMax).
const limits = { ...DEFAULT_LIMITS, policyMax: { capacity: 10 * BENCH_POLICY.capacity, tokensPerSecond: 10 * BENCH_POLICY.refillTokens } };

let ids = 0;
const replica = (node: string, peers: string[]): Replica =>
  new Replica({ node, peers, nowUs: START, randomHex: () => (++ids).toString(16).padStart(18, "0"), warmupTimeoutUs: 0, limits });

/** The writer's stream to "r": bytes and the raw time each was made at. */
export function makeStream(): { bytes: Uint8Array[]; at: number[] } {
  const writer = replica("w", ["r"]);
  const first = replica("r", ["w"]);
  const keys = Array.from({ length: KEYS }, (_, i) => bucketId(BENCH_POLICY.name, keyName(i)));
  const bytes: Uint8Array[] = [];
  const at: number[] = [];
  let now = START;
  let next = 0;
  // The first delta carries the writer's registry only: join it outside the timed updates.
  for (let i = -1; i < UPDATES / PER_DELTA; i++) {
    now += FLUSH_US;
    for (let k = 0; i >= 0 && k < PER_DELTA; k++) writer.consume(keys[(next++ * 7919) % KEYS] as string, config, 1, now);
    writer.tick(now);
    const d = writer.deltaFor("r", now);
    if (d === undefined) throw new Error(`update ${i}: the writer had no delta`);
    if (i >= 0 && d.keys.length !== PER_DELTA) throw new Error(`delta ${i}: holds ${d.keys.length} keys, not ${PER_DELTA}`);
    const encoded = encodeDeltaRequest(d);
    const r = first.applyDelta(decode(encoded), now);
    if (!r.ok) throw new Error(`update ${i}: refused: delta.${r.error.field}: ${r.error.message}`);
    writer.applyAck(r.value, now);
    // grpc-js hands the deserializer a Buffer.
    bytes.push(Buffer.from(encoded));
    at.push(now);
  }
  return { bytes, at };
}

/** What the transport does with a received message (peer-transport.ts, inbound-stream.ts). */
function decode(bytes: Uint8Array): Parameters<Replica["applyDelta"]>[0] {
  const delta = readDeltaRequest(bytes);
  if (delta === undefined) throw new Error("no delta in the bytes");
  delta.node = "w";
  return delta;
}

const cpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** One timed pass over updates 1..n of the stream (the registry-only delta 0 joined untimed). */
export function pass(
  stream: { bytes: Uint8Array[]; at: number[] },
  what: "decode" | "validate" | "apply",
): { us: number; refused: number } {
  const receiver = replica("r", ["w"]);
  const r0 = receiver.applyDelta(decode(stream.bytes[0] as Uint8Array), stream.at[0] as number);
  if (!r0.ok) throw new Error(`registry delta refused: ${r0.error.message}`);
  let refused = 0;
  let sink = 0;
  // The receiver keeps the limits it parsed across deltas (ReplicaState.knownLimits): so does this pass.
  const known = new KnownLimits();
  const t0 = cpuUs();
  for (let i = 1; i < stream.bytes.length; i++) {
    const raw = decode(stream.bytes[i] as Uint8Array);
    if (what === "decode") sink += raw.keys.length;
    else if (what === "validate") {
      if (!validateDelta(raw, limits, known).ok) refused++;
    } else if (!receiver.applyDelta(raw, stream.at[i] as number).ok) refused++;
  }
  const us = cpuUs() - t0;
  if (sink < 0) throw new Error("unreachable");
  return { us, refused };
}

export function measure(): UpdateCost {
  const stream = makeStream();
  const n = (stream.bytes.length - 1) * PER_DELTA;
  const bodies = decisionBodies(BASELINE_CALLS);
  const best = { decode: Number.POSITIVE_INFINITY, validate: Number.POSITIVE_INFINITY, apply: Number.POSITIVE_INFINITY };
  let decisionUs = Number.POSITIVE_INFINITY;
  let refused = 0;
  // The first round warms the JIT up; it is timed like the others and kept only if it is best.
  for (let rep = 0; rep < REPEATS; rep++) {
    for (const what of ["decode", "validate", "apply"] as const) {
      const p = pass(stream, what);
      best[what] = Math.min(best[what], p.us / n);
      if (what === "apply") refused = Math.max(refused, p.refused);
    }
    decisionUs = Math.min(decisionUs, decisionPass(bodies));
  }
  const bytes = stream.bytes.slice(1).reduce((s, b) => s + b.length, 0);
  return {
    updates: n,
    keysPerDelta: PER_DELTA,
    applyUs: best.apply,
    decodeUs: best.decode,
    decodeValidateUs: best.validate,
    refused,
    bytesPerUpdate: bytes / n,
    decisionUs,
    ratio: best.apply / decisionUs,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = measure();
  const f = (x: number): string => x.toFixed(2);
  process.stdout.write(
    `${r.keysPerDelta}-key deltas, ${r.updates} updates: decode ${f(r.decodeUs)} us, validate ${f(r.decodeValidateUs - r.decodeUs)} us, join and ack ${f(r.applyUs - r.decodeValidateUs)} us; apply ${f(r.applyUs)} us per update against ${f(r.decisionUs)} us per standalone decision (100 per call, in process): ${f(r.ratio)}x (target <= 0.5x)\n`,
  );
  process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
}
