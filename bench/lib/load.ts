// Runs one bounded load against a target with either driver and returns what both sides saw:
// the client's rate and latencies, the server's own OK/error counts, and the service's CPU time.
//
// Which driver: h2load sends one fixed body per process, so it cannot spread calls over 10k or
// 1M keys; the Node http2 driver patches a key into each body. Key-space runs use the Node
// driver; fixed-body runs (one hot key, low-load latency) use h2load when it is installed.

import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DriverResult, DriverSpec } from "../driver/spec.ts";
import { CONSUME_PATH, consumeBody } from "./bodies.ts";
import { keyName } from "./keys.ts";
import { runToEnd } from "./processes.ts";
import { type SampleTally, startSampler } from "./sampler.ts";
import { type LatencySummary, summarise } from "./stats.ts";
import type { Target } from "./targets.ts";
import type { Tools } from "./tools.ts";

export type LoadSpec = Omit<DriverSpec, "address" | "path"> & {
  /** Use h2load when available: only for a fixed body (key space of one key). */
  readonly preferH2load?: boolean;
};

export interface Measurement {
  readonly driver: "h2load" | "node";
  /**
   * Who checked each call's gRPC status: the server's counts, the Node driver (reads the
   * trailers), or, for h2load without server counts, only the sampled real-client calls.
   */
  readonly verifiedBy: "server" | "client" | "sampled";
  /** Calls made with a real gRPC client during the run (a handful; not in the rates). */
  readonly sampled: SampleTally;
  /** Calls per second answered OK (client side). */
  readonly callsPerSecond: number;
  readonly latencyUs: LatencySummary;
  /** Server-side counts over the whole run, warm-up included. */
  readonly serverOk: number;
  readonly serverErrors: number;
  /**
   * OK calls per second counted by the server over the measured window (the client's verified
   * count if the server's is unavailable): the rate every ratio uses, since h2load would count
   * a call that failed in gRPC as a success.
   */
  readonly serverCallsPerSecond: number;
  /** Client-side failures by kind (see DriverResult.failures). */
  readonly clientFailures: Readonly<Record<string, number>>;
  /** Service CPU (all its processes) per OK call over the measured window, microseconds. */
  readonly cpuUsPerCall: number;
  /** Fraction of one core the service used over the measured window. */
  readonly serviceCpuShare: number;
  readonly driverCpuS: number;
  /** Open loop: calls the driver dropped (too many in flight) and its worst lag behind schedule. */
  readonly shed: number;
  readonly maxSendLagUs: number;
  readonly lateSendFraction: number;
}

const REPO = new URL("../../", import.meta.url).pathname;

/** One real-client call this often during every run: ~10 per second, nothing next to the load. */
const SAMPLE_EVERY_MS = 100;

/** Hooks called when the measured window opens and closes (the driver knows when). */
interface WindowHooks {
  open(): void;
  close(): void;
}

async function runNodeDriver(tools: Tools, spec: DriverSpec, hooks: WindowHooks): Promise<DriverResult> {
  const bound = (spec.warmupS + spec.durationS) * 1000 + 30_000;
  const args = ["--import", "tsx", join(REPO, "bench/driver/main.ts"), JSON.stringify(spec)];
  const out = await runToEnd(tools, process.execPath, args, tools.loadCpus, bound, (line) => {
    if (line === "MEASURING") hooks.open();
    if (line === "MEASURED") hooks.close();
  });
  const line = out.split("\n").find((l) => l.startsWith("RESULT "));
  if (line === undefined) throw new Error(`node driver printed no result:\n${out.slice(-2000)}`);
  return JSON.parse(line.slice(7)) as DriverResult;
}

/** Parses h2load's summary and its per-request log (start us, HTTP status, duration us). */
async function runH2load(tools: Tools, spec: DriverSpec, hooks: WindowHooks): Promise<DriverResult> {
  const dir = mkdtempSync(join(tmpdir(), "tokenmesh-h2load-"));
  const bodyFile = join(dir, "body.bin");
  const logFile = join(dir, "requests.log");
  writeFileSync(
    bodyFile,
    consumeBody(
      spec.policy,
      Array.from({ length: spec.decisionsPerCall }, () => keyName(0)),
    ),
  );
  const args = [
    `http://${spec.address}${spec.path}`,
    "-c",
    String(spec.connections),
    "-m",
    String(spec.streamsPerConnection),
    "-t",
    "1",
    "-D",
    `${Math.round(spec.durationS * 1000)}ms`,
    "--warm-up-time",
    `${Math.round(spec.warmupS * 1000)}ms`,
    "-d",
    bodyFile,
    "-H",
    "content-type: application/grpc",
    "-H",
    "te: trailers",
    `--log-file=${logFile}`,
  ];
  if (spec.ratePerSecond !== null) args.push("--rps", String(Math.max(1, Math.round(spec.ratePerSecond / spec.connections))));
  // h2load starts in milliseconds, so its warm-up ends about warmupS after the spawn.
  const opener = setTimeout(() => hooks.open(), spec.warmupS * 1000);
  let out: string;
  try {
    out = await runToEnd(tools, tools.h2load as string, args, tools.loadCpus, (spec.warmupS + spec.durationS) * 1000 + 30_000);
  } finally {
    clearTimeout(opener);
  }
  hooks.close();
  const rows = readFileSync(logFile, "utf8").trim().split("\n");
  const latencies = new Float64Array(rows.length);
  const failures: Record<string, number> = {};
  let ok = 0;
  for (const row of rows) {
    const [, status, us] = row.split("\t");
    if (status === "200") latencies[ok++] = Number(us);
    else if (status === "0")
      continue; // still in flight when the duration ended
    else failures[`http-${status}`] = (failures[`http-${status}`] ?? 0) + 1;
  }
  const m = /finished in ([\d.]+)(m?s), ([\d.]+) req\/s/.exec(out);
  const measuredS = m === null ? spec.durationS : Number(m[1]) / (m[2] === "ms" ? 1000 : 1);
  return {
    started: rows.length,
    ok,
    failures,
    measuredS,
    callsPerSecond: m === null ? ok / measuredS : Number(m[3]),
    latencyUs: summarise(latencies.subarray(0, ok)),
    shed: 0,
    maxSendLagUs: 0,
    lateSendFraction: 0,
    driverCpuS: Number.NaN, // not reported by h2load
  };
}

type Counts = { ok: number; error: number };

interface Sample {
  readonly t: number;
  readonly cpuS: number;
  /** null when the server's counts could not be read (e.g. its metrics endpoint failed). */
  readonly counts: Promise<Counts | null>;
}

function sample(target: Target): Sample {
  return { t: performance.now(), cpuS: target.cpuSeconds(), counts: target.statusCounts().catch(() => null) };
}

export async function measure(tools: Tools, target: Target, load: LoadSpec): Promise<Measurement> {
  const { preferH2load, ...rest } = load;
  const spec: DriverSpec = { ...rest, address: target.address, path: CONSUME_PATH };
  const useH2load = preferH2load === true && tools.h2load !== null && load.keySpace.size === 1;
  const total = sample(target);
  let from: Sample | undefined;
  let to: Sample | undefined;
  const hooks: WindowHooks = {
    open: () => {
      from ??= sample(target);
    },
    close: () => {
      to ??= sample(target);
    },
  };
  const sampler = startSampler(target.address, spec.policy, SAMPLE_EVERY_MS);
  let result: DriverResult;
  try {
    result = useH2load ? await runH2load(tools, spec, hooks) : await runNodeDriver(tools, spec, hooks);
  } finally {
    hooks.close();
  }
  const sampled = await sampler.stop();
  const start = from ?? total;
  const end = to as Sample;
  const [before, after, totalBefore, totalAfter] = await Promise.all([start.counts, end.counts, total.counts, sample(target).counts]);
  const windowS = (end.t - start.t) / 1000;
  const cpuS = end.cpuS - start.cpuS;
  // Server counts are the truth; without them only the Node driver's own check of grpc-status
  // can stand in (h2load's "succeeded" means HTTP 200 and nothing more).
  const serverSide = before !== null && after !== null && totalBefore !== null && totalAfter !== null;
  const windowOk = serverSide ? after.ok - before.ok : result.callsPerSecond * windowS;
  return {
    driver: useH2load ? "h2load" : "node",
    verifiedBy: serverSide ? "server" : useH2load ? "sampled" : "client",
    sampled,
    callsPerSecond: result.callsPerSecond,
    latencyUs: result.latencyUs,
    serverOk: serverSide ? totalAfter.ok - totalBefore.ok : Number.NaN,
    serverErrors: serverSide ? totalAfter.error - totalBefore.error : 0,
    serverCallsPerSecond: windowOk / windowS,
    clientFailures: result.failures,
    cpuUsPerCall: windowOk > 0 ? (cpuS * 1e6) / windowOk : Number.NaN,
    serviceCpuShare: cpuS / windowS,
    driverCpuS: result.driverCpuS,
    shed: result.shed,
    maxSendLagUs: result.maxSendLagUs,
    lateSendFraction: result.lateSendFraction,
  };
}
