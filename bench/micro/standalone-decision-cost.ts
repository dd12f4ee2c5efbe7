// CPU of one local decision of a standalone replica at 100 decisions per call, in process: the
// per-update micro-benchmark's same-run baseline (remote-update-cost.ts). It runs what the
// server runs for a Consume call between grpc-js and grpc-js: the hand-written request decoder
// on the message bytes, the DecisionService (validation against the policies in force, the
// all-or-nothing decision on the single-node store, metrics), and the hand-written response
// encoder. Not included: grpc-js and HTTP/2 (about 27 us per call whatever it carries, so about
// 0.27 us per decision at 100 per call), which the bench's solo:saturate baseline includes. So
// this baseline is the smaller of the two, and a ratio against it is the stricter one.
//
//   npx tsx bench/micro/standalone-decision-cost.ts [calls, default 2000]
//
// Keys: 10,000 of the bench policy, uniform from a seeded generator, as the bench's 10k row.

import { policySnapshot, resolveConfig } from "../../src/config/load.ts";
import { BucketStore } from "../../src/limiter/bucket-store.ts";
import { Limiter } from "../../src/limiter/limiter.ts";
import { Metrics } from "../../src/metrics/metrics.ts";
import { DecisionService } from "../../src/server/decision-service.ts";
import { decodeDecisionRequest } from "../../src/server/request-decoder.ts";
import { encodeDecisionAnswers } from "../../src/server/response-encoder.ts";
import { consumeTemplate } from "../lib/bodies.ts";
import { seededRandom } from "../lib/keys.ts";
import { BENCH_POLICY } from "../lib/targets.ts";

const KEYS = 10_000;
const PER_CALL = 100;
const START_US = 1_800_000_000_000_000;
/** The bench's calls are spaced by the load; here 100 decisions per virtual millisecond. */
const CALL_SPACING_US = 1_000;

export interface DecisionCost {
  readonly calls: number;
  readonly perCall: number;
  /** us of process CPU per decision, best of the passes. */
  readonly decisionUs: number;
}

/** A decision path as the server builds it for a standalone replica of the bench's config. */
function standaloneService(clock: () => number): DecisionService {
  const p = BENCH_POLICY;
  const config = resolveConfig(
    {
      listen: "127.0.0.1:0",
      limits: { maxKeys: 2_000_000, maxDecisionsPerRequest: 1000 },
      policies: { [p.name]: { capacity: p.capacity, refill: p.refillTokens, per: `${p.refillPeriodMs}ms` } },
    },
    "standalone-decision-cost",
  );
  const store = new BucketStore(config.limits.maxKeys);
  const metrics = new Metrics(
    { keysHeld: () => store.size, evictions: () => store.evictions, ready: () => true },
    { policies: config.policies.keys(), defaultMetrics: false },
  );
  const snapshot = policySnapshot(config);
  return new DecisionService({
    limiter: new Limiter(store),
    policies: () => snapshot,
    limits: config.limits,
    clock,
    metrics,
    warmingUp: () => false,
  });
}

const cpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** Request bodies made before any timing (the frame's 5-byte prefix cut off, as grpc-js hands them over). */
export function decisionBodies(calls: number): Buffer[] {
  const template = consumeTemplate(BENCH_POLICY.name, PER_CALL);
  const draw = seededRandom(14);
  return Array.from({ length: calls }, () => template.fill(() => Math.floor(draw() * KEYS)).subarray(5));
}

/** One timed pass over `bodies` on a fresh store: us of process CPU per decision. */
export function decisionPass(bodies: readonly Buffer[]): number {
  let now = START_US;
  const service = standaloneService(() => now);
  let sink = 0;
  const t0 = cpuUs();
  for (const body of bodies) {
    now += CALL_SPACING_US;
    sink += encodeDecisionAnswers(service.consume(decodeDecisionRequest(body))).length;
  }
  const us = cpuUs() - t0;
  if (sink <= 0) throw new Error("no answers were encoded");
  return us / (bodies.length * PER_CALL);
}

/** Best of `passes` passes over `calls` calls. */
export function measureDecisions(calls = 2_000, passes = 5): DecisionCost {
  const bodies = decisionBodies(calls);
  let best = Number.POSITIVE_INFINITY;
  for (let pass = 0; pass < passes; pass++) best = Math.min(best, decisionPass(bodies));
  return { calls, perCall: PER_CALL, decisionUs: best };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(`RESULT ${JSON.stringify(measureDecisions(Number(process.argv[2] ?? 2_000)))}\n`);
}
