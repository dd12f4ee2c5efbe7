// The user-level bench's setups and measurements: the Express app of bench/user-level/app.ts
// behind each limiter, started fresh, and what a team would measure from outside: latency at one
// connection, throughput at 50, and the CPU every process of the setup spent per request.
//
// Cores: the app and the load generator share the load core; the limiter's own processes
// (redis-server, the tokenmesh replicas) get the service core, which is idle for "none" and the
// in-memory limiter. CPU per request counts every process of the setup except the load generator.

import { join } from "node:path";
import type { Http1LatencyResult, Http1LatencySpec } from "../driver/http1-latency.ts";
import { startFleet } from "./mesh.ts";
import { type Child, cpuSeconds, runToEnd, spawnReady } from "./processes.ts";
import type { LatencySummary } from "./stats.ts";
import { startFloor, startRedisStore, startTokenmesh } from "./targets.ts";
import type { Tools } from "./tools.ts";

export type SetupName = "none" | "rlf-memory" | "rlf-redis" | "erl-redis" | "tokenmesh" | "tokenmesh-mesh" | "tokenmesh-floor";

/**
 * "tokenmesh-floor" is not a limiter: the tokenmesh client in the same app against the bench's
 * no-op grpc-js server (bench/baselines/floor-server.ts, a constant answer). It is what any
 * server on grpc-js costs this app, so the tokenmesh rows' misses can be read against it.
 */
export const SETUPS: readonly SetupName[] = [
  "none",
  "rlf-memory",
  "rlf-redis",
  "erl-redis",
  "tokenmesh",
  "tokenmesh-mesh",
  "tokenmesh-floor",
];

export const SETUP_LABEL: Readonly<Record<SetupName, string>> = {
  none: "no limiter",
  "rlf-memory": "rate-limiter-flexible, memory",
  "rlf-redis": "rate-limiter-flexible + Redis",
  "erl-redis": "express-rate-limit + rate-limit-redis",
  tokenmesh: "tokenmesh client, standalone replica",
  "tokenmesh-mesh": "tokenmesh client, 3-replica mesh",
  "tokenmesh-floor": "tokenmesh client, no-op grpc-js server (floor)",
};

const REPO = new URL("../../", import.meta.url).pathname;
export const KEYS = 10_000;
/** Connections of the throughput run, as in the comparison. */
export const CONNECTIONS = 50;

export interface RunningSetup {
  readonly name: SetupName;
  readonly appPort: number;
  /** Every process of the setup: the app and the limiter's own processes. */
  readonly pids: readonly number[];
  stop(): Promise<void>;
}

interface Backend {
  readonly children: readonly { stop(): Promise<void>; pid: number }[];
  readonly app: Record<string, unknown>;
}

async function startBackend(tools: Tools, name: SetupName): Promise<Backend> {
  if (name === "none" || name === "rlf-memory") return { children: [], app: { limiter: name } };
  if (name === "rlf-redis" || name === "erl-redis") {
    const { child, port } = await startRedisStore(tools);
    return { children: [child], app: { limiter: name, redisPort: port } };
  }
  if (name === "tokenmesh") {
    const t = await startTokenmesh(tools);
    return { children: [{ pid: t.pids[0] as number, stop: () => t.stop() }], app: { limiter: "tokenmesh", addresses: [t.address] } };
  }
  if (name === "tokenmesh-floor") {
    const f = await startFloor(tools);
    return { children: [{ pid: f.pids[0] as number, stop: () => f.stop() }], app: { limiter: "tokenmesh", addresses: [f.address] } };
  }
  const fleet = await startFleet(tools, { replicas: 3, mesh: { relay: true, flushIntervalMs: 5 } });
  const children = fleet.replicas.map((r, i) => ({ pid: r.pid, stop: i === 0 ? () => fleet.stop() : async () => {} }));
  // The app lists every replica and sticks to the first that answers, as the client does.
  return { children, app: { limiter: "tokenmesh", addresses: fleet.replicas.map((r) => r.address) } };
}

export async function startSetup(tools: Tools, name: SetupName): Promise<RunningSetup> {
  const backend = await startBackend(tools, name);
  const stopBackend = async (): Promise<void> => {
    for (const c of backend.children) await c.stop();
  };
  let app: Child;
  let port: number;
  try {
    const started = await spawnReady(tools, {
      name: `app (${name})`,
      command: process.execPath,
      args: ["--import", "tsx", join(REPO, "bench/user-level/app.ts"), JSON.stringify(backend.app)],
      cpus: tools.loadCpus,
      cwd: REPO,
      ready: (line) => (line.startsWith("READY ") ? (JSON.parse(line.slice(6)) as { port: number }).port : undefined),
    });
    app = started.child;
    port = started.info;
  } catch (err) {
    await stopBackend();
    throw err;
  }
  return {
    name,
    appPort: port,
    pids: [app.pid, ...backend.children.map((c) => c.pid)],
    async stop() {
      await app.stop();
      await stopBackend();
    },
  };
}

export interface UserLevelMeasurement {
  /** One connection, one request in flight (the Node HTTP/1.1 driver, uncorrected). */
  readonly latencyUs: LatencySummary;
  /** CPU of the setup's processes per request at one connection. */
  readonly cpuUsPerRequestLow: number;
  /** wrk, CONNECTIONS connections, closed loop. */
  readonly requestsPerSecond: number;
  /** CPU of the setup's processes per request during the wrk run. */
  readonly cpuUsPerRequest: number;
  /** Share of a core the limiter's own processes used during the wrk run (0 without any). */
  readonly limiterCpuShare: number;
  /** Non-200 answers and transport errors over both runs. */
  readonly failures: number;
}

const cpuOf = (pids: readonly number[]): number => pids.reduce((s, pid) => s + cpuSeconds(pid), 0);

interface WrkResult {
  requests: number;
  durationUs: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
}

function wrk(tools: Tools, port: number, seconds: number, seed: number): Promise<WrkResult> {
  const args = [
    "-t1",
    `-c${CONNECTIONS}`,
    `-d${seconds}s`,
    "-s",
    join(REPO, "bench/user-level/request.lua"),
    `http://127.0.0.1:${port}/api`,
  ];
  // request.lua reads its key space and seed from the environment (wrk passes scripts no arguments).
  process.env.TOKENMESH_BENCH_KEYS = String(KEYS);
  process.env.TOKENMESH_BENCH_SEED = String(seed);
  return runToEnd(tools, tools.wrk as string, args, tools.loadCpus, (seconds + 30) * 1000).then((out) => {
    const line = out.split("\n").find((l) => l.startsWith("RESULT "));
    if (line === undefined) throw new Error(`wrk printed no result:\n${out.slice(-2000)}`);
    return JSON.parse(line.slice(7)) as WrkResult;
  });
}

function latencyRun(tools: Tools, spec: Http1LatencySpec, onWindow: (edge: "open" | "close") => void): Promise<Http1LatencyResult> {
  const args = ["--import", "tsx", join(REPO, "bench/driver/http1-latency.ts"), JSON.stringify(spec)];
  const bound = (spec.warmupS + spec.durationS) * 1000 + 30_000;
  return runToEnd(tools, process.execPath, args, tools.loadCpus, bound, (line) => {
    if (line === "MEASURING") onWindow("open");
    if (line === "MEASURED") onWindow("close");
  }).then((out) => {
    const line = out.split("\n").find((l) => l.startsWith("RESULT "));
    if (line === undefined) throw new Error(`http1-latency printed no result:\n${out.slice(-2000)}`);
    return JSON.parse(line.slice(7)) as Http1LatencyResult;
  });
}

export interface UserLevelTiming {
  /** Seconds of each warm-up: at 50 connections, then at one (per-call paths are JIT-compiled by their call count). */
  readonly warmupS: number;
  readonly latencyS: number;
  readonly throughputS: number;
  readonly seed: number;
}

/** Warm-up at load, then the one-connection latency run, then the 50-connection throughput run. */
export async function measureSetup(tools: Tools, setup: RunningSetup, timing: UserLevelTiming): Promise<UserLevelMeasurement> {
  const limiterPids = setup.pids.slice(1);
  // JIT, connection pools and the limiter's key space get warm under the same load as measured.
  await wrk(tools, setup.appPort, Math.max(1, Math.round(timing.warmupS)), timing.seed + 1);
  let low = { cpu: 0, t: 0 };
  let lowEnd = { cpu: 0, t: 0 };
  const lat = await latencyRun(
    tools,
    {
      port: setup.appPort,
      path: "/api",
      header: "x-api-key",
      keys: KEYS,
      seed: timing.seed,
      warmupS: timing.warmupS,
      durationS: timing.latencyS,
    },
    (edge) => {
      const point = { cpu: cpuOf(setup.pids), t: performance.now() };
      if (edge === "open") low = point;
      else lowEnd = point;
    },
  );
  const cpu0 = cpuOf(setup.pids);
  const limiter0 = cpuOf(limiterPids);
  const load = await wrk(tools, setup.appPort, timing.throughputS, timing.seed + 2);
  const cpu1 = cpuOf(setup.pids);
  const limiter1 = cpuOf(limiterPids);
  const seconds = load.durationUs / 1e6;
  const lowRequests = lat.latencyUs.count;
  const wrkErrors = load.connect + load.read + load.write + load.status + load.timeout;
  return {
    latencyUs: lat.latencyUs,
    cpuUsPerRequestLow: lowRequests > 0 ? ((lowEnd.cpu - low.cpu) * 1e6) / lowRequests : Number.NaN,
    requestsPerSecond: load.requests / seconds,
    cpuUsPerRequest: load.requests > 0 ? ((cpu1 - cpu0) * 1e6) / load.requests : Number.NaN,
    limiterCpuShare: (limiter1 - limiter0) / seconds,
    failures: wrkErrors + Object.values(lat.failures).reduce((a, b) => a + b, 0),
  };
}
