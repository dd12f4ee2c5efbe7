// Several tokenmesh processes started side by side for the replication rows: a mesh (every
// replica lists the others as peers) or the same number of replicas without peers, on the same
// core, so that a comparison between the two differs only in the peers.
//
// Each replica is `node bin/tokenmesh.mjs serve` on its own config, as `tokenmesh local-mesh`
// runs them, but spawned one by one so the bench can pin it and read its CPU time by pid.
// Peer ports must be known to the other replicas before they start: they are picked free and
// the whole fleet is restarted on new ports if one was taken in between (EADDRINUSE).

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type Child, cpuSeconds, spawnReady } from "./processes.ts";
import { BENCH_POLICY, freePort } from "./targets.ts";
import type { Tools } from "./tools.ts";

/** The accuracy row's policy: a small bucket refilled fast, so a saturated key admits at the refill rate. */
export const HOT_POLICY = { name: "hot", capacity: 100, refillPerSecond: 1000 } as const;

export interface MeshSettings {
  /** Forward what peers sent to the other peers (the default); false sends only local changes. */
  readonly relay: boolean;
  readonly flushIntervalMs: number;
  /** Each replica gets a mesh section with no peers: the replicated store, no replication. */
  readonly alone?: boolean;
}

export interface FleetOptions {
  readonly replicas: number;
  /** null: no `mesh:` section at all (standalone replicas, the single-node bucket store). */
  readonly mesh: MeshSettings | null;
  readonly cpuProfDir?: string;
}

export interface Replica {
  readonly name: string;
  /** 127.0.0.1:PORT of the gRPC service. */
  readonly address: string;
  readonly metricsUrl: string;
  readonly pid: number;
  /** The replica-to-replica port, for meshes. */
  readonly peerPort: number | undefined;
  cpuSeconds(): number;
}

export interface Fleet {
  readonly options: FleetOptions;
  readonly replicas: readonly Replica[];
  /** Replicas that exited before `stop()`, with their exit codes: a crash, for the log. */
  died(): readonly string[];
  stop(): Promise<void>;
}

const REPO = new URL("../../", import.meta.url).pathname;
const READY_TIMEOUT_MS = 20_000;

function configText(name: string, mesh: MeshSettings | null, peerPorts: readonly number[], index: number, dataDir: string): string {
  const p = BENCH_POLICY;
  const lines = [
    "listen: 127.0.0.1:0",
    "metricsListen: 127.0.0.1:0",
    "httpListen: null",
    // Snapshots on, as a replica runs by default, into this run's own directory.
    `dataDir: ${JSON.stringify(dataDir)}`,
    "logLevel: info", // the start-up line carries the bound ports; nothing is logged per call
    "limits: { maxKeys: 2000000, maxDecisionsPerRequest: 1000 }",
    "policies:",
    `  ${p.name}: { capacity: ${p.capacity}, refill: ${p.refillTokens}, per: ${p.refillPeriodMs}ms }`,
    `  ${HOT_POLICY.name}: { capacity: ${HOT_POLICY.capacity}, refill: ${HOT_POLICY.refillPerSecond}, per: 1s }`,
  ];
  if (mesh !== null) {
    const peers = peerPorts.filter((_, i) => i !== index).map((port) => `127.0.0.1:${port}`);
    lines.push(
      "mesh:",
      `  node: ${name}`,
      "  cluster: bench",
      `  peerListen: 127.0.0.1:${peerPorts[index]}`,
      `  peers: [${peers.join(", ")}]`,
      "  insecure: true", // loopback only
      `  flushInterval: ${mesh.flushIntervalMs}ms`,
      `  relay: ${mesh.relay}`,
      // Alone, a replica admits once its warm-up times out: keep that short for the no-peer case.
      ...(peers.length === 0 ? ["  warmupTimeout: 50ms"] : []),
    );
  }
  return `${lines.join("\n")}\n`;
}

interface Serving {
  address: string;
  metricsPort: number;
  peerPort?: number;
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(url)).text();
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  return m === null ? Number.NaN : Number(m[1]);
}

/** Waits until every replica of a mesh admits and has an outbound stream to each peer. */
async function waitMeshReady(replicas: readonly Replica[], peersEach: number): Promise<void> {
  const deadline = performance.now() + READY_TIMEOUT_MS;
  for (const r of replicas) {
    for (;;) {
      const [ready, connected] = await Promise.all([
        metric(r.metricsUrl, "tokenmesh_ready"),
        metric(r.metricsUrl, "tokenmesh_peers_connected"),
      ]).catch(() => [0, 0]);
      if (ready === 1 && connected >= peersEach) break;
      if (performance.now() > deadline)
        throw new Error(`${r.name}: not ready after ${READY_TIMEOUT_MS} ms (ready ${ready}, peers ${connected})`);
      await sleep(50);
    }
  }
}

async function startOnce(tools: Tools, options: FleetOptions): Promise<Fleet> {
  const dir = mkdtempSync(join(tmpdir(), "tokenmesh-fleet-"));
  const peerPorts = options.mesh === null ? [] : await Promise.all(Array.from({ length: options.replicas }, () => freePort()));
  const prof = options.cpuProfDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`];
  const peered = options.mesh !== null && options.mesh.alone !== true && options.replicas > 1;
  const started = await Promise.allSettled(
    Array.from({ length: options.replicas }, async (_, i) => {
      const name = `${options.mesh === null ? "solo" : peered ? "replica" : "alone"}-${i + 1}`;
      // A replica without peers gets its own peer port only, and an empty peer list.
      const config = join(dir, `${name}.yaml`);
      writeFileSync(
        config,
        configText(name, options.mesh, peered ? peerPorts : peerPorts.slice(i, i + 1), peered ? i : 0, join(dir, `${name}-data`)),
      );
      const { child, info } = await spawnReady<Serving>(tools, {
        name,
        command: process.execPath,
        args: [...prof, join(REPO, "bin/tokenmesh.mjs"), "serve", "--config", config],
        cpus: tools.serverCpus,
        ready: (line) => (line.includes("tokenmesh serving") ? (JSON.parse(line) as Serving) : undefined),
      });
      return { name, child, info };
    }),
  );
  const children: Child[] = started.flatMap((s) => (s.status === "fulfilled" ? [s.value.child] : []));
  let stopping = false;
  const died: string[] = [];
  for (const c of children) void c.exited.then((code) => (stopping ? undefined : died.push(`${c.name} (exit ${code})`)));
  const stop = async (): Promise<void> => {
    stopping = true;
    await Promise.all(children.map((c) => c.stop()));
  };
  const failed = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed !== undefined) {
    await stop();
    throw failed.reason;
  }
  const replicas = started.map((s) => {
    const { name, child, info } = (s as PromiseFulfilledResult<{ name: string; child: Child; info: Serving }>).value;
    return {
      name,
      address: info.address,
      metricsUrl: `http://127.0.0.1:${info.metricsPort}/metrics`,
      pid: child.pid,
      peerPort: info.peerPort,
      cpuSeconds: () => cpuSeconds(child.pid),
    };
  });
  try {
    if (options.mesh !== null) await waitMeshReady(replicas, peered ? options.replicas - 1 : 0);
  } catch (err) {
    await stop();
    throw err;
  }
  return { options, replicas, died: () => died, stop };
}

/** Starts the fleet and waits until it admits; retries on a taken peer port. */
export async function startFleet(tools: Tools, options: FleetOptions): Promise<Fleet> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(tools, options);
    } catch (err) {
      const busy = err instanceof Error && err.message.includes("EADDRINUSE");
      if (!busy || attempt >= 3) throw err;
    }
  }
}

export function describeFleet(options: FleetOptions): string {
  if (options.mesh === null) return `${options.replicas} standalone replica(s) (no mesh section)`;
  const kind =
    options.mesh.alone === true || options.replicas === 1
      ? `${options.replicas} mesh replica(s) without peers`
      : `${options.replicas}-replica mesh`;
  return `${kind}, flush ${options.mesh.flushIntervalMs} ms, relay ${options.mesh.relay ? "on" : "off"}`;
}
