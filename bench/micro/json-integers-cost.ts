// What the exact integer pass of the HTTP door (src/http/json-integers.ts) adds to a JSON
// Consume body, as a same-run ratio to protobuf-es's decode of the same body (which the door
// does next either way). Bodies of 1, 100 and 1,000 decisions, plain costs (the common case: no
// rewrite) and costs in exponent form (every cost rewritten).
//
//   npx tsx bench/micro/json-integers-cost.ts
//
// Writes bench/results/json-integers-cost.json.

import { mkdirSync, writeFileSync } from "node:fs";
import { fromJsonString } from "@bufbuild/protobuf";
import { ConsumeRequestSchema } from "../../src/gen/tokenmesh/v1/rate_limiter_pb.ts";
import { exactIntegerFields } from "../../src/http/json-integers.ts";

const body = (decisions: number, cost: (i: number) => string): string =>
  `{"decisions":[${Array.from({ length: decisions }, (_, i) => `{"buckets":[{"policy":"api","key":"tenant-${i}","cost":${cost(i)}}]}`).join(
    ",",
  )}]}`;

/** Mean microseconds per call over enough calls to take about 200 ms. */
function usPerCall(f: () => unknown): number {
  let n = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) f();
    const ms = performance.now() - t0;
    if (ms > 200) return (ms * 1000) / n;
    n *= 2;
  }
}

const rows = [];
for (const decisions of [1, 100, 1000]) {
  for (const [form, cost] of [
    ["plain", (i: number) => String(1 + (i % 5))],
    ["exponent", (i: number) => `${1 + (i % 5)}e0`],
  ] as const) {
    const text = body(decisions, cost);
    // Warm both paths first, then alternate so machine load hits both alike.
    for (let i = 0; i < 200; i++) {
      exactIntegerFields(text);
      fromJsonString(ConsumeRequestSchema, text, { ignoreUnknownFields: true });
    }
    const scan: number[] = [];
    const decode: number[] = [];
    for (let round = 0; round < 3; round++) {
      scan.push(usPerCall(() => exactIntegerFields(text)));
      decode.push(usPerCall(() => fromJsonString(ConsumeRequestSchema, text, { ignoreUnknownFields: true })));
    }
    const best = (xs: number[]) => Math.min(...xs);
    rows.push({
      decisions,
      costs: form,
      bytes: text.length,
      scanUs: best(scan),
      decodeUs: best(decode),
      scanOverDecode: best(scan) / best(decode),
    });
  }
}

console.log("| decisions | costs | bytes | integer pass us | protobuf-es decode us | pass / decode |");
console.log("|---|---|---|---|---|---|");
for (const r of rows)
  console.log(
    `| ${r.decisions} | ${r.costs} | ${r.bytes.toLocaleString("en")} | ${r.scanUs.toFixed(1)} | ${r.decodeUs.toFixed(1)} | ${r.scanOverDecode.toFixed(2)} |`,
  );
mkdirSync(new URL("../results/", import.meta.url), { recursive: true });
writeFileSync(new URL("../results/json-integers-cost.json", import.meta.url), `${JSON.stringify({ rows }, null, 2)}\n`);
