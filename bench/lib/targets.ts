// The servers a scenario measures, each started fresh by the bench: tokenmesh itself (the real
// CLI and config file), the grpc-js "floor" and the "redis" service with its own redis-server.
// Every target counts its gRPC statuses server-side, because h2load counts any HTTP 200 as a
// success even when the trailers say grpc-status != 0.

import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Child, cpuSeconds, rssBytes, spawnReady } from "./processes.ts";
import type { Tools } from "./tools.ts";

export type TargetName = "tokenmesh" | "floor" | "floor-nice" | "redis";

export interface Target {
  readonly name: TargetName;
  /** 127.0.0.1:PORT of the gRPC service. */
  readonly address: string;
  /** Every process doing the service's work (for redis: the Node service and redis-server). */
  readonly pids: readonly number[];
  /** Calls answered OK and not OK, as the server itself counted them. */
  statusCounts(): Promise<{ ok: number; error: number }>;
  cpuSeconds(): number;
  /** RSS of the main process, bytes. */
  rss(): number;
  stop(): Promise<void>;
}

export interface TargetOptions {
  /** Write a V8 CPU profile of the service process into this directory on exit. */
  readonly cpuProfDir?: string;
}

const REPO = new URL("../../", import.meta.url).pathname;

/** The policy every scenario uses: 1,000 tokens, refilled at 1,000/s, so most cold keys admit. */
export const BENCH_POLICY = { name: "bench", capacity: 1000, refillTokens: 1000, refillPeriodMs: 1000 } as const;

function nodeArgs(options: TargetOptions, script: string): string[] {
  const prof = options.cpuProfDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`];
  return [...prof, script];
}

async function get(url: string): Promise<string> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.text();
}

function wrap(name: TargetName, address: string, children: readonly Child[], counts: () => Promise<{ ok: number; error: number }>): Target {
  const pids = children.map((c) => c.pid);
  return {
    name,
    address,
    pids,
    statusCounts: counts,
    cpuSeconds: () => pids.reduce((s, pid) => s + cpuSeconds(pid), 0),
    rss: () => rssBytes(pids[0] as number),
    // The service first, then its store, so no call sees the store vanish.
    async stop() {
      for (const c of children) await c.stop();
    },
  };
}

/** Sums `tokenmesh_request_duration_seconds_count` for Consume by code. */
export function parseConsumeCounts(metrics: string): { ok: number; error: number } {
  let ok = 0;
  let error = 0;
  const re = /^tokenmesh_request_duration_seconds_count\{([^}]*)\} (\S+)$/gm;
  for (const m of metrics.matchAll(re)) {
    const labels = m[1] ?? "";
    if (!labels.includes('grpc_service="tokenmesh.v1.RateLimiter"') || !labels.includes('grpc_method="Consume"')) continue;
    if (labels.includes('grpc_code="OK"')) ok += Number(m[2]);
    else error += Number(m[2]);
  }
  return { ok, error };
}

export type TokenmeshTarget = Target & { readonly metricsUrl: string };

export async function startTokenmesh(tools: Tools, options: TargetOptions = {}): Promise<TokenmeshTarget> {
  const dir = mkdtempSync(join(tmpdir(), "tokenmesh-bench-"));
  const config = join(dir, "config.yaml");
  const p = BENCH_POLICY;
  writeFileSync(
    config,
    [
      "listen: 127.0.0.1:0",
      "metricsListen: 127.0.0.1:0",
      "httpListen: null",
      // Snapshots on, as a replica runs by default, into this run's own directory.
      `dataDir: ${JSON.stringify(join(dir, "data"))}`,
      "logLevel: info", // start-up line carries the bound ports; nothing is logged per call
      "limits: { maxKeys: 2000000, maxDecisionsPerRequest: 1000 }",
      `policies: { ${p.name}: { capacity: ${p.capacity}, refill: ${p.refillTokens}, per: ${p.refillPeriodMs}ms } }`,
      "",
    ].join("\n"),
  );
  const { child, info } = await spawnReady(tools, {
    name: "tokenmesh",
    command: process.execPath,
    args: [...nodeArgs(options, join(REPO, "bin/tokenmesh.mjs")), "serve", "--config", config],
    cpus: tools.serverCpus,
    ready: (line) => {
      if (!line.includes("tokenmesh serving")) return undefined;
      const rec = JSON.parse(line) as { address: string; metricsPort: number };
      return rec;
    },
  });
  const metricsUrl = `http://127.0.0.1:${info.metricsPort}/metrics`;
  const target = wrap("tokenmesh", info.address, [child], async () => parseConsumeCounts(await get(metricsUrl)));
  return Object.assign(target, { metricsUrl });
}

interface ReadyLine {
  port: number;
  statsPort: number;
}

const readyLine = (line: string): ReadyLine | undefined =>
  line.startsWith("READY ") ? (JSON.parse(line.slice(6)) as ReadyLine) : undefined;

/** A floor: plain grpc-js ("floor") or the same constant answer through nice-grpc ("floor-nice"). */
export async function startFloor(tools: Tools, options: TargetOptions = {}, name: "floor" | "floor-nice" = "floor"): Promise<Target> {
  const script = name === "floor" ? "bench/baselines/floor-server.ts" : "bench/baselines/floor-nice-server.ts";
  const { child, info } = await spawnReady(tools, {
    name,
    command: process.execPath,
    args: ["--import", "tsx", ...nodeArgs(options, join(REPO, script))],
    cpus: tools.serverCpus,
    cwd: REPO,
    ready: readyLine,
  });
  const stats = `http://127.0.0.1:${info.statsPort}/`;
  return wrap(name, `127.0.0.1:${info.port}`, [child], async () => JSON.parse(await get(stats)) as { ok: number; error: number });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A redis-server in memory only, pinned to the service core; resolves once it accepts connections. */
export async function startRedisStore(tools: Tools): Promise<{ child: Child; port: number }> {
  if (tools.redisServer === null) throw new Error("redis-server is not installed");
  const port = await freePort();
  const { child } = await spawnReady(tools, {
    name: "redis-server",
    command: tools.redisServer,
    // In memory only, like the limiters it is compared with; same core as the service.
    args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "notice"],
    cpus: tools.serverCpus,
    ready: (line) => (line.includes("Ready to accept connections") ? true : undefined),
  });
  return { child, port };
}

export async function startRedis(tools: Tools, options: TargetOptions = {}): Promise<Target> {
  const { child: store, port } = await startRedisStore(tools);
  const policies = JSON.stringify({ [BENCH_POLICY.name]: BENCH_POLICY });
  try {
    const { child, info } = await spawnReady(tools, {
      name: "redis-service",
      command: process.execPath,
      args: ["--import", "tsx", ...nodeArgs(options, join(REPO, "bench/baselines/redis-service.ts")), String(port), policies],
      cpus: tools.serverCpus,
      cwd: REPO,
      ready: readyLine,
    });
    const stats = `http://127.0.0.1:${info.statsPort}/`;
    return wrap(
      "redis",
      `127.0.0.1:${info.port}`,
      [child, store],
      async () => JSON.parse(await get(stats)) as { ok: number; error: number },
    );
  } catch (err) {
    await store.stop();
    throw err;
  }
}

export function startTarget(name: TargetName, tools: Tools, options: TargetOptions = {}): Promise<Target> {
  if (name === "tokenmesh") return startTokenmesh(tools, options);
  if (name === "floor" || name === "floor-nice") return startFloor(tools, options, name);
  return startRedis(tools, options);
}
