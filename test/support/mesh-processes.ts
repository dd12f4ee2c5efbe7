// Real tokenmesh processes on loopback for multi-process mesh tests: writes one config per
// replica into a temp dir, starts `tokenmesh serve` for each, optionally routes every peer link
// through a fault-injecting proxy, and gives each replica a client. Bounded: every wait has a
// timeout, and `close()` kills whatever is left.

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isAbortError } from "abort-controller-x";
import { type Channel, ClientError, createChannel, createClient, Status } from "nice-grpc";
import { stringify } from "yaml";
import { Prng } from "../sim/prng.ts";
import { type FaultProxy, startFaultProxy } from "./fault-proxy.ts";
import { freePort, type Spawned, spawnCli } from "./process.ts";
import { type RateLimiterClient, rateLimiterDefinition } from "./server.ts";
import type { Admission } from "./window-excess.ts";

export interface ProcessReplica {
  readonly name: string;
  readonly config: string;
  /** Its snapshot directory (kept across restarts, like a volume). */
  readonly dataDir: string;
  readonly address: string;
  readonly metricsPort: number;
  /** The HTTP/JSON port (httpListen). */
  readonly httpPort: number;
  process: Spawned;
  readonly client: RateLimiterClient;
  readonly channel: Channel;
}

export interface ProcessMesh {
  readonly replicas: ProcessReplica[];
  /** proxies[i][j]: the link replica i dials to reach replica j (when proxied). */
  readonly proxies: (FaultProxy | undefined)[][];
  /** Kills replica i with SIGKILL and waits for it to be gone. */
  kill(i: number): Promise<void>;
  /** Sends SIGTERM to replica i and waits for it to drain and exit. */
  stop(i: number): Promise<void>;
  /** Starts replica i again with the same config and data (a new incarnation) and waits until it serves. */
  restart(i: number): Promise<void>;
  /** Waits until replica i admits (`tokenmesh_ready 1`: warmed up), however long a loaded machine takes. */
  ready(i: number, timeoutMs?: number): Promise<void>;
  /** Cuts (or heals) every proxied link between the two sides. */
  partition(sideA: readonly number[], sideB: readonly number[], cut: boolean): void;
  /** Silences every proxied link between the two sides: nothing closes, nothing gets through (heal with `partition(..., false)`). */
  silence(sideA: readonly number[], sideB: readonly number[]): void;
  metric(i: number, name: string): Promise<number>;
  /** Waits until every replica reports a stream to every other one. */
  fullyConnected(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface ProcessMeshSpec {
  readonly size: number;
  readonly policies: Record<string, unknown>;
  readonly proxied?: boolean;
  readonly mesh?: Record<string, unknown>;
  /** Top-level config fields for every replica (logLevel, audit, ...). */
  readonly config?: Record<string, unknown>;
}

/**
 * How long a replica may take to start or stop. Generous on purpose: with both cores busy, a
 * tsx start-up alone has taken over 6 s; the tests wait for the log line or the ready metric,
 * so a fast machine never waits this long.
 */
const START_TIMEOUT_MS = 60_000;

/** `tokenmesh serve` with the snapshot directory its config file names. */
const serve = (config: string): Spawned => spawnCli(["serve", "--config", config], { TOKENMESH_DATA_DIR: "" });

/**
 * Starts the mesh, retrying with fresh ports if a port picked in advance was taken meanwhile by
 * another process on this machine (peers must know each other's ports before they start).
 */
export async function startProcessMesh(spec: ProcessMeshSpec): Promise<ProcessMesh> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(spec);
    } catch (err) {
      if (attempt >= 3 || !/EADDRINUSE/.test(String(err))) throw err;
    }
  }
}

async function startOnce(spec: ProcessMeshSpec): Promise<ProcessMesh> {
  const dir = mkdtempSync(join(tmpdir(), "tokenmesh-mesh-"));
  const n = spec.size;
  const peerPorts = await Promise.all(Array.from({ length: n }, () => freePort()));
  const proxies: (FaultProxy | undefined)[][] = [];
  for (let i = 0; i < n; i++) {
    proxies.push([]);
    for (let j = 0; j < n; j++) {
      (proxies[i] as (FaultProxy | undefined)[])[j] =
        spec.proxied === true && i !== j ? await startFaultProxy(peerPorts[j] as number) : undefined;
    }
  }
  const replicas: ProcessReplica[] = [];
  for (let i = 0; i < n; i++) {
    const name = `p${i + 1}`;
    const port = await freePort();
    const metricsPort = await freePort();
    const httpPort = await freePort();
    const peers = peerPorts.flatMap((p, j) => (j === i ? [] : [`127.0.0.1:${proxies[i]?.[j]?.port ?? p}`]));
    const config = join(dir, `${name}.yaml`);
    const dataDir = join(dir, `${name}-data`);
    writeFileSync(
      config,
      stringify({
        listen: `127.0.0.1:${port}`,
        metricsListen: `127.0.0.1:${metricsPort}`,
        httpListen: `127.0.0.1:${httpPort}`,
        logLevel: "info",
        dataDir,
        ...spec.config,
        mesh: { node: name, cluster: "test", peerListen: `127.0.0.1:${peerPorts[i]}`, peers, insecure: true, ...spec.mesh },
        policies: spec.policies,
      }),
    );
    const channel = createChannel(`127.0.0.1:${port}`);
    replicas.push({
      name,
      config,
      dataDir,
      address: `127.0.0.1:${port}`,
      metricsPort,
      httpPort,
      process: serve(config),
      channel,
      client: createClient(rateLimiterDefinition, channel),
    });
  }
  try {
    await Promise.all(replicas.map((r) => r.process.waitFor("tokenmesh serving", START_TIMEOUT_MS)));
  } catch (err) {
    for (const r of replicas) {
      r.channel.close();
      r.process.child.kill("SIGKILL");
    }
    for (const row of proxies) for (const p of row) await p?.close();
    throw err;
  }

  const mesh: ProcessMesh = {
    replicas,
    proxies,
    async kill(i) {
      const r = replicas[i] as ProcessReplica;
      r.process.child.kill("SIGKILL");
      await r.process.exited(5_000);
    },
    async stop(i) {
      const r = replicas[i] as ProcessReplica;
      r.process.child.kill("SIGTERM");
      await r.process.exited(START_TIMEOUT_MS);
    },
    async restart(i) {
      const r = replicas[i] as ProcessReplica;
      r.process = serve(r.config);
      await r.process.waitFor("tokenmesh serving", START_TIMEOUT_MS);
    },
    async ready(i, timeoutMs = START_TIMEOUT_MS) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const ready = await mesh.metric(i, "tokenmesh_ready").catch(() => Number.NaN);
        if (ready === 1) return;
        if (Date.now() > deadline) throw new Error(`replica ${i} did not become ready within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    partition(sideA, sideB, cut) {
      for (const a of sideA) {
        for (const b of sideB) {
          for (const p of [proxies[a]?.[b], proxies[b]?.[a]]) {
            if (p === undefined) continue;
            if (cut) p.cut();
            else p.resume();
          }
        }
      }
    },
    silence(sideA, sideB) {
      for (const a of sideA) for (const b of sideB) for (const p of [proxies[a]?.[b], proxies[b]?.[a]]) p?.silence();
    },
    async metric(i, name) {
      const text = await (await fetch(`http://127.0.0.1:${(replicas[i] as ProcessReplica).metricsPort}/metrics`)).text();
      const line = text.split("\n").find((l) => l.startsWith(`${name} `));
      return line === undefined ? Number.NaN : Number(line.split(" ")[1]);
    },
    async fullyConnected(timeoutMs = START_TIMEOUT_MS) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const counts = await Promise.all(replicas.map((_, i) => mesh.metric(i, "tokenmesh_peers_connected")));
        if (counts.every((c) => c === n - 1)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`the ${n} replicas did not all connect within ${timeoutMs} ms`);
    },
    async close() {
      for (const r of replicas) {
        r.channel.close();
        if (r.process.child.exitCode === null) r.process.child.kill("SIGKILL");
      }
      await Promise.all(replicas.map((r) => r.process.exited(5_000)));
      for (const row of proxies) for (const p of row) await p?.close();
    },
  };
  return mesh;
}

export interface LoadResult {
  allowed: number;
  denied: number;
  errors: number;
  /**
   * Failed calls by gRPC status name (`UNAVAILABLE`, `DEADLINE_EXCEEDED`, ...), `CLIENT_TIMEOUT`
   * for the call's own 1 s budget running out, or the error's name: what a failing test prints.
   */
  errorCodes: Record<string, number>;
  /** Times (ms since the epoch) of allowed decisions, when their answers arrived. */
  allowedAt: number[];
  /** Allowed decisions with when they were sent and answered (window-excess.ts). */
  admissions: Admission[];
}

/**
 * Consumes one token of `policy/key` through `client` about every `everyMs` until `untilMs`
 * (epoch ms; a function is read before each call, for an end decided once the run is under way). The gaps are exponential (a Poisson process drawn from `seed`), not fixed: with
 * fixed gaps, replicas offered the same period keep the same phase against the refill, and the
 * one whose requests always land just after another's never sees a token, which would read as a
 * lock-out that is only the test's lock-step.
 */
export async function paceLoad(
  client: RateLimiterClient,
  policy: string,
  key: string,
  everyMs: number,
  untilMs: number | (() => number),
  seed: number,
): Promise<LoadResult> {
  const gaps = new Prng(seed);
  const result: LoadResult = { allowed: 0, denied: 0, errors: 0, errorCodes: {}, allowedAt: [], admissions: [] };
  const end = typeof untilMs === "number" ? () => untilMs : untilMs;
  let next = Date.now();
  while (Date.now() < end()) {
    try {
      const sentMs = Date.now();
      const r = await client.consume({ decisions: [{ buckets: [{ policy, key }] }] }, { signal: AbortSignal.timeout(1_000) });
      if (r.results[0]?.allowed === true) {
        const receivedMs = Date.now();
        result.allowed++;
        result.allowedAt.push(receivedMs);
        result.admissions.push({ sentMs, receivedMs });
      } else result.denied++;
    } catch (err) {
      result.errors++;
      const code = errorCode(err);
      result.errorCodes[code] = (result.errorCodes[code] ?? 0) + 1;
    }
    next += -Math.log(1 - gaps.next()) * everyMs;
    const wait = next - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  return result;
}

/** What a failed call failed with, as LoadResult.errorCodes counts it. */
function errorCode(err: unknown): string {
  if (err instanceof ClientError) return Status[err.code] ?? `code ${err.code}`;
  // AbortSignal.timeout rejects with its reason, a DOMException named TimeoutError.
  if (isAbortError(err) || (err instanceof Error && err.name === "TimeoutError")) return "CLIENT_TIMEOUT";
  return err instanceof Error ? err.name : typeof err;
}

/**
 * The failed calls of each load, for an assertion's message: `errors 0/3/0 (p2: UNAVAILABLE 2,
 * CLIENT_TIMEOUT 1)`, so a test that fails on errors says which.
 */
export function describeErrors(results: readonly LoadResult[]): string {
  const counts = results.map((r) => r.errors).join("/");
  const detail = results.flatMap((r, i) => {
    const codes = Object.entries(r.errorCodes).map(([code, n]) => `${code} ${n}`);
    return codes.length === 0 ? [] : [`p${i + 1}: ${codes.join(", ")}`];
  });
  return detail.length === 0 ? `errors ${counts}` : `errors ${counts} (${detail.join("; ")})`;
}
