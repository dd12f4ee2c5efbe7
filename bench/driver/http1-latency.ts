// One keep-alive HTTP/1.1 connection, one request in flight: the latency an application's caller
// sees, request by request, with no correction. (wrk's percentiles add synthetic samples for
// coordinated omission, so on a machine that stalls now and then its median moves with the
// stalls; here every figure is a request that was actually made.)
//
// Bare node:net with the request bytes written by hand and only the status line and
// Content-Length read back: a few tens of microseconds per request, the same for every limiter.
//
// Usage: node --import tsx bench/driver/http1-latency.ts SPEC_JSON, SPEC = Http1LatencySpec.
// Prints MEASURING and MEASURED around the measured window and `RESULT {...}` at the end.

import net from "node:net";
import { keySampler } from "../lib/keys.ts";
import { summarise } from "../lib/stats.ts";

export interface Http1LatencySpec {
  readonly port: number;
  readonly path: string;
  readonly header: string;
  readonly keys: number;
  readonly seed: number;
  readonly warmupS: number;
  readonly durationS: number;
}

export interface Http1LatencyResult {
  readonly ok: number;
  /** Answers by HTTP status other than 200, and transport failures. */
  readonly failures: Record<string, number>;
  readonly latencyUs: ReturnType<typeof summarise>;
  readonly measuredS: number;
}

const HEAD_END = Buffer.from("\r\n\r\n");
const MAX_SAMPLES = 2_000_000;

/** The key names the wrk script uses too (bench/user-level/request.lua). */
export const apiKeyName = (i: number): string => `key-${String(i).padStart(7, "0")}`;

function contentLength(head: string): number {
  const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  return m === null ? 0 : Number(m[1]);
}

async function run(spec: Http1LatencySpec): Promise<Http1LatencyResult> {
  const socket = net.connect(spec.port, "127.0.0.1");
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  const draw = keySampler({ size: spec.keys, distribution: "uniform" }, spec.seed);
  const prefix = `GET ${spec.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${spec.header}: `;
  const failures: Record<string, number> = {};
  const latencies = new Float64Array(MAX_SAMPLES);
  let recorded = 0;
  let pending: Buffer = Buffer.alloc(0);
  let answer: ((status: number) => void) | undefined;
  socket.on("data", (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    const end = pending.indexOf(HEAD_END);
    if (end < 0) return;
    const head = pending.toString("latin1", 0, end);
    const total = end + 4 + contentLength(head);
    if (pending.length < total) return;
    pending = pending.subarray(total);
    const status = Number(head.slice(9, 12));
    const done = answer;
    answer = undefined;
    done?.(status);
  });
  const closed = new Promise<never>((_, reject) => {
    socket.once("close", () => reject(new Error("the application closed the connection")));
    socket.once("error", reject);
  });
  const once = (): Promise<number> =>
    Promise.race([
      new Promise<number>((resolve) => {
        answer = resolve;
        socket.write(`${prefix}${apiKeyName(draw())}\r\n\r\n`);
      }),
      closed,
    ]);
  const t0 = performance.now();
  const measureFrom = t0 + spec.warmupS * 1000;
  const stopAt = measureFrom + spec.durationS * 1000;
  while (performance.now() < measureFrom) await once();
  process.stdout.write("MEASURING\n");
  const started = performance.now();
  let ok = 0;
  for (let now = started; now < stopAt && recorded < MAX_SAMPLES; ) {
    const status = await once();
    const after = performance.now();
    latencies[recorded++] = (after - now) * 1000;
    if (status === 200) ok++;
    else failures[`http-${status}`] = (failures[`http-${status}`] ?? 0) + 1;
    now = after;
  }
  const measuredS = (performance.now() - started) / 1000;
  process.stdout.write("MEASURED\n");
  socket.destroy();
  return { ok, failures, latencyUs: summarise(latencies.subarray(0, recorded)), measuredS };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const spec = JSON.parse(process.argv[2] ?? "") as Http1LatencySpec;
  run(spec).then(
    (result) => process.stdout.write(`RESULT ${JSON.stringify(result)}\n`),
    (err: unknown) => {
      process.stderr.write(`http1-latency: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
