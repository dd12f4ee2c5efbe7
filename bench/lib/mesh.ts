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
import { type FaultProxy, startFaultProxy } from "../../test/support/fault-proxy.ts";
import { type Child, cpuSeconds, spawnReady } from "./processes.ts";
import { BENCH_POLICY, freePort } from "./targets.ts";
import type { Tools } from "./tools.ts";

/** The accuracy row's policy: a small bucket refilled fast, so a saturated key admits at the refill rate. */
export const HOT_POLICY = { name: "hot", capacity: 100, refillPerSecond: 1000 } as const;

export interface MeshSettings {
  /** Forward what peers sent to the other peers (the default); false sends only local changes. */
  readonly relay: boolean;
  /** Relays per region (`mesh.relays`): a region's data crosses to each other region once. */
  readonly relays?: boolean;
  readonly flushIntervalMs: number;
  /** Each replica gets a mesh section with no peers: the replicated store, no replication. */
  readonly alone?: boolean;
}

/**
 * Replicas split into regions: replica i is in region floor(i / (replicas / count)), labelled
 * `region-<n>` in its config. Every link between two regions goes through the test suite's
 * fault proxy with `crossRegionDelayMs` of one-way delay (links inside a region are direct), and
 * the proxies count the bytes that cross.
 */
export interface RegionLayout {
  readonly count: number;
  readonly crossRegionDelayMs: number;
}

export interface FleetOptions {
  readonly replicas: number;
  /** Absent: one region, every link direct. */
  readonly regions?: RegionLayout;
  /**
   * `limits.shedEventLoopLag: null` on every replica. For fleets that oversubscribe the service
   * core on purpose (the scaling rows): there a starved replica sheds every call and leaves
   * nothing to measure.
   */
  readonly noShedding?: boolean;
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
  /** TCP payload bytes (both directions) forwarded so far on links between regions; 0 with one region. */
  crossRegionBytes(): number;
  stop(): Promise<void>;
}

/** Region index of replica `i` (0 without a layout). */
export function regionOf(options: FleetOptions, i: number): number {
  if (options.regions === undefined) return 0;
  return Math.floor(i / (options.replicas / options.regions.count));
}

const REPO = new URL("../../", import.meta.url).pathname;
const READY_TIMEOUT_MS = 20_000;

interface MeshPlace {
  readonly peerListenPort: number;
  /** HOST:PORT of each peer as this replica dials it (a proxy's port for a link across regions). */
  readonly peers: readonly string[];
  readonly region: string;
}

function configText(name: string, mesh: MeshSettings | null, place: MeshPlace | undefined, dataDir: string, noShedding: boolean): string {
  const p = BENCH_POLICY;
  const lines = [
    "listen: 127.0.0.1:0",
    "metricsListen: 127.0.0.1:0",
    "httpListen: null",
    // Snapshots on, as a replica runs by default, into this run's own directory.
    `dataDir: ${JSON.stringify(dataDir)}`,
    "logLevel: info", // the start-up line carries the bound ports; nothing is logged per call
    `limits: { maxKeys: 2000000, maxDecisionsPerRequest: 1000${noShedding ? ", shedEventLoopLag: null" : ""} }`,
    "policies:",
    `  ${p.name}: { capacity: ${p.capacity}, refill: ${p.refillTokens}, per: ${p.refillPeriodMs}ms }`,
    `  ${HOT_POLICY.name}: { capacity: ${HOT_POLICY.capacity}, refill: ${HOT_POLICY.refillPerSecond}, per: 1s }`,
  ];
  if (mesh !== null && place !== undefined) {
    const peers = place.peers;
    lines.push(
      "mesh:",
      `  node: ${name}`,
      "  cluster: bench",
      `  region: ${place.region}`,
      `  peerListen: 127.0.0.1:${place.peerListenPort}`,
      `  peers: [${peers.join(", ")}]`,
      "  insecure: true", // loopback only
      `  flushInterval: ${mesh.flushIntervalMs}ms`,
      `  relay: ${mesh.relay}`,
      ...(mesh.relays === true ? ["  relays: true"] : []),
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
  // proxies[i][j]: the link replica i dials to reach replica j, when the two are in different regions.
  const proxies: (FaultProxy | undefined)[][] = [];
  const closeProxies = async (): Promise<void> => {
    for (const row of proxies) for (const p of row) await p?.close();
  };
  const places: (MeshPlace | undefined)[] = [];
  for (let i = 0; i < options.replicas; i++) {
    const row: (FaultProxy | undefined)[] = [];
    proxies.push(row);
    if (options.mesh === null) {
      places.push(undefined);
      continue;
    }
    const peers: string[] = [];
    for (let j = 0; peered && j < options.replicas; j++) {
      if (j === i) continue;
      const across = options.regions !== undefined && regionOf(options, i) !== regionOf(options, j);
      const proxy = across ? await startFaultProxy(peerPorts[j] as number) : undefined;
      proxy?.setDelay(options.regions?.crossRegionDelayMs ?? 0);
      row[j] = proxy;
      peers.push(`127.0.0.1:${proxy?.port ?? peerPorts[j]}`);
    }
    places.push({ peerListenPort: peerPorts[i] as number, peers, region: `region-${regionOf(options, i) + 1}` });
  }
  const started = await Promise.allSettled(
    Array.from({ length: options.replicas }, async (_, i) => {
      const name = `${options.mesh === null ? "solo" : peered ? "replica" : "alone"}-${i + 1}`;
      // A replica without peers gets its own peer port only, and an empty peer list.
      const config = join(dir, `${name}.yaml`);
      writeFileSync(config, configText(name, options.mesh, places[i], join(dir, `${name}-data`), options.noShedding === true));
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
    await closeProxies();
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
  const crossRegionBytes = (): number => proxies.reduce((s, row) => s + row.reduce((t, p) => t + (p?.bytes() ?? 0), 0), 0);
  return { options, replicas, died: () => died, crossRegionBytes, stop };
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
  const regions = options.regions;
  if (regions !== undefined)
    return `${options.replicas}-replica mesh in ${regions.count} regions of ${options.replicas / regions.count}, ${regions.crossRegionDelayMs} ms one-way between regions, flush ${options.mesh.flushIntervalMs} ms, ${options.mesh.relays === true ? "relays per region" : `relay ${options.mesh.relay ? "on" : "off"}`}`;
  const kind =
    options.mesh.alone === true || options.replicas === 1
      ? `${options.replicas} mesh replica(s) without peers`
      : `${options.replicas}-replica mesh`;
  return `${kind}, flush ${options.mesh.flushIntervalMs} ms, relay ${options.mesh.relay ? "on" : "off"}`;
}
