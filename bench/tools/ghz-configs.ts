// Writes bench/ghz/*.json: ghz configs for the bench's scenarios, for users who have ghz
// (ghz >= 0.80 reads these keys; its template functions give uniform keys, not Zipf).
// Each config's data is checked against the proto with protobuf-es before it is written.
// Usage: npx tsx bench/tools/ghz-configs.ts

import { writeFileSync } from "node:fs";
import { fromJson, type JsonObject } from "@bufbuild/protobuf";
import { ConsumeRequestSchema } from "../../src/gen/tokenmesh/v1/rate_limiter_pb.ts";
import { BENCH_POLICY } from "../lib/targets.ts";

const DIR = new URL("../ghz/", import.meta.url).pathname;

/** A fixed-width key drawn uniformly from [0, n), like the bench's key names. */
const uniformKey = (n: number): string => `k{{ randomInt 0 ${n} | printf "%07d" }}`;

interface GhzScenario {
  readonly file: string;
  readonly name: string;
  readonly concurrency: number;
  readonly connections: number;
  readonly keys: readonly string[];
  readonly rps?: number;
}

const SCENARIOS: readonly GhzScenario[] = [
  { file: "consume-1-key-hot", name: "Consume 1/call, one hot key, saturating", concurrency: 128, connections: 4, keys: ["k0000000"] },
  {
    file: "consume-10k-uniform",
    name: "Consume 1/call, 10k uniform keys, saturating",
    concurrency: 128,
    connections: 4,
    keys: [uniformKey(10_000)],
  },
  {
    file: "consume-1m-uniform",
    name: "Consume 1/call, 1M uniform keys (cold), saturating",
    concurrency: 128,
    connections: 4,
    keys: [uniformKey(1_000_000)],
  },
  {
    file: "consume-100-per-call",
    name: "Consume 100 decisions/call, 10k uniform keys",
    concurrency: 32,
    connections: 4,
    keys: Array.from({ length: 100 }, () => uniformKey(10_000)),
  },
  {
    file: "low-load-latency",
    name: "Consume 1/call, 10k keys, one call in flight (p50 latency)",
    concurrency: 1,
    connections: 1,
    keys: [uniformKey(10_000)],
  },
  {
    file: "fixed-rate-half-load",
    name: "Consume 1/call, 10k keys at a fixed rate: set rps to half your measured max",
    concurrency: 64,
    connections: 4,
    keys: [uniformKey(10_000)],
    rps: 10_000,
  },
];

for (const s of SCENARIOS) {
  const data = { decisions: s.keys.map((key) => ({ buckets: [{ policy: BENCH_POLICY.name, key }] })) };
  // Field names must be the proto's JSON names: decode a sample with the template filled in.
  const sample = JSON.parse(JSON.stringify(data).replaceAll(/k\{\{[^}]*\}\}/g, "k0000042")) as JsonObject;
  fromJson(ConsumeRequestSchema, sample);
  const config = {
    name: s.name,
    proto: "proto/tokenmesh/v1/rate_limiter.proto",
    "import-paths": ["proto"],
    call: "tokenmesh.v1.RateLimiter.Consume",
    host: "127.0.0.1:50051",
    insecure: true,
    concurrency: s.concurrency,
    connections: s.connections,
    // Bounded both ways: whichever comes first.
    total: s.rps === undefined ? 2_000_000 : s.rps * 30,
    "max-duration": "30s",
    ...(s.rps === undefined ? {} : { rps: s.rps }),
    data,
  };
  writeFileSync(`${DIR}${s.file}.json`, `${JSON.stringify(config, null, 2)}\n`);
  process.stdout.write(`wrote bench/ghz/${s.file}.json\n`);
}
