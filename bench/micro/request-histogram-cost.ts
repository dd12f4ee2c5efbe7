// What one observation of tokenmesh_request_duration_seconds costs (issue 13): prom-client's
// `Histogram.observe(labels, value)` as the middleware called it before, against the kept series
// handle of src/metrics/call-histogram.ts, in alternating rounds of the same process (a shared
// machine drifts; only the same-run ratio is read).
//
//   node --import tsx bench/micro/request-histogram-cost.ts [observations per round, default 2000000]
//
// Prints a table and writes bench/results/request-histogram-cost.json.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Histogram, Registry } from "prom-client";
import { CallHistogram } from "../../src/metrics/call-histogram.ts";

const N = Number(process.argv[2] ?? 2_000_000);
if (!Number.isInteger(N) || N < 1000) throw new RangeError(`observations per round must be an integer >= 1000, got ${process.argv[2]}`);
const ROUNDS = 5;
const BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1];
const LABELS = ["grpc_service", "grpc_method", "grpc_code"] as const;
const labels = { grpc_service: "tokenmesh.v1.RateLimiter", grpc_method: "Consume", grpc_code: "OK" };
// Handler times spread over the buckets, as a loaded server's are.
const values = Array.from({ length: 1024 }, (_, i) => 0.00002 * 1.006 ** i);

const reference = new Histogram({ name: "ref_seconds", help: "h", labelNames: LABELS, buckets: BUCKETS, registers: [new Registry()] });
const hot = new CallHistogram({ name: "hot_seconds", help: "h", labelNames: LABELS, buckets: BUCKETS, registry: new Registry() });
const series = hot.series(labels);

function timeNs(observe: (v: number) => void): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) observe(values[i & 1023] as number);
  return Number(process.hrtime.bigint() - t0) / N;
}

const runs: { promClient: number; series: number }[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const promClient = timeNs((v) => reference.observe(labels, v));
  const kept = timeNs((v) => series.observe(v));
  runs.push({ promClient, series: kept });
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const ratios = runs.map((x) => x.series / x.promClient);
const result = {
  observationsPerRound: N,
  rounds: ROUNDS,
  promClientNsPerObservation: median(runs.map((x) => x.promClient)),
  seriesNsPerObservation: median(runs.map((x) => x.series)),
  ratio: median(ratios),
  runs,
};
console.log(`| figure | ns per observation (median of ${ROUNDS} alternating rounds of ${N}) |\n|---|---|`);
console.log(`| prom-client observe(labels, value) | ${result.promClientNsPerObservation.toFixed(1)} |`);
console.log(`| kept series observe(value) | ${result.seriesNsPerObservation.toFixed(1)} |`);
console.log(`| ratio (series / prom-client, same round) | ${result.ratio.toFixed(3)}x |`);
writeFileSync(join(import.meta.dirname, "../results/request-histogram-cost.json"), `${JSON.stringify(result, null, 2)}\n`);
