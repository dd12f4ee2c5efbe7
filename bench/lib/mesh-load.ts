// One bounded load on every replica of a fleet at once: one Node driver process per replica
// (all pinned to the load cores), a real gRPC client sampling each replica ~10 times a second,
// and scrapes of every replica when the measured window opens (the last driver past its
// warm-up) and closes (the first driver done), so the window is one where all are loaded.

import { join } from "node:path";
import type { DriverResult, DriverSpec } from "../driver/spec.ts";
import { CONSUME_PATH } from "./bodies.ts";
import type { LoadSpec } from "./load.ts";
import type { Fleet, Replica } from "./mesh.ts";
import { diffScrape, parseScrape, type ReplicaScrape } from "./mesh-metrics.ts";
import { type WireSnapshot, wireBytes, wireSnapshot } from "./mesh-wire.ts";
import { runToEnd } from "./processes.ts";
import { type SampleTally, startSampler } from "./sampler.ts";
import { BENCH_POLICY, parseConsumeCounts } from "./targets.ts";
import type { Tools } from "./tools.ts";

const REPO = new URL("../../", import.meta.url).pathname;

export interface ReplicaWindow {
  readonly name: string;
  readonly cpuS: number;
  /** Consume calls the replica answered OK and not OK over the window (its own count). */
  readonly ok: number;
  readonly errors: number;
  /** Counters and lag histogram over the window. */
  readonly scrape: ReplicaScrape;
}

export interface FleetMeasurement {
  /** The load each replica got. */
  readonly load: LoadSpec;
  readonly windowS: number;
  readonly replicas: readonly ReplicaWindow[];
  /** TCP payload bytes on the replication connections over the window (NaN without `ss`). */
  readonly wireBytes: number;
  /** TCP payload bytes over the window on links between regions (the fleet's proxies; 0 in one region). */
  readonly crossRegionBytes: number;
  /** Counters over the whole run, from before the drivers started to after they all ended. */
  readonly whole: readonly ReplicaScrape[];
  /** Seconds from the first driver's first send to the last driver's end of sending. */
  readonly loadSpanS: number;
  readonly drivers: readonly DriverResult[];
  readonly sampled: SampleTally;
  /**
   * Calls that failed by any check (drivers, servers, sampled client) other than the load
   * shedder's RESOURCE_EXHAUSTED, which is counted in `shed` instead.
   */
  readonly failed: number;
  /**
   * Calls the replicas' load shedder refused (RESOURCE_EXHAUSTED while the event loop was over
   * limits.shedEventLoopLag behind and busy), by their own count over the whole run: the
   * designed answer of a replica that falls behind, which took no token and made no decision.
   */
  readonly shed: number;
  /** All calls the replicas answered over the whole run (OK, shed and failed). */
  readonly answered: number;
  /** Share of open-loop sends over 5 ms late, worst driver. */
  readonly lateSendFraction: number;
}

interface Snapshot {
  readonly t: number;
  readonly cpu: readonly number[];
  readonly texts: Promise<readonly string[]>;
  readonly wire: WireSnapshot;
  readonly crossRegion: number;
}

/** One scrape; retried, since a kept-alive connection the server just closed resets once. */
async function scrapeText(r: Replica): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(r.metricsUrl);
      if (!res.ok) throw new Error(`${r.metricsUrl}: HTTP ${res.status}`);
      return await res.text();
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
}

function snapshot(fleet: Fleet): Snapshot {
  const ports = fleet.replicas.flatMap((r) => (r.peerPort === undefined ? [] : [r.peerPort]));
  const texts = Promise.all(fleet.replicas.map(scrapeText));
  texts.catch(() => {}); // awaited (and its error thrown) once the run is over
  return {
    t: performance.now(),
    cpu: fleet.replicas.map((r) => r.cpuSeconds()),
    texts,
    wire: wireSnapshot(ports),
    crossRegion: fleet.crossRegionBytes(),
  };
}

export interface FleetLoadOptions {
  /**
   * Scrape every replica this often during the window too. A replica keeps at most 100,000 lag
   * samples between scrapes (the rest are dropped), so a lag figure needs scrapes often enough
   * that the cap is not reached; a throughput figure wants as few as possible.
   */
  readonly scrapeEveryMs?: number;
  /** Policy of the sampling client's calls (keep them off a policy whose counts a row reads). */
  readonly samplerPolicy?: string;
}

export async function measureFleet(tools: Tools, fleet: Fleet, load: LoadSpec, options: FleetLoadOptions = {}): Promise<FleetMeasurement> {
  const n = fleet.replicas.length;
  const start = snapshot(fleet);
  let opened = 0;
  let firstOpenT = Number.NaN;
  let lastCloseT = Number.NaN;
  let from: Snapshot | undefined;
  let to: Snapshot | undefined;
  let ticker: NodeJS.Timeout | undefined;
  const scrapes: Promise<unknown>[] = [];
  const open = (): void => {
    if (opened++ === 0) firstOpenT = performance.now();
    if (opened < n) return;
    from = snapshot(fleet);
    if (options.scrapeEveryMs !== undefined) {
      ticker = setInterval(() => scrapes.push(Promise.all(fleet.replicas.map(scrapeText)).catch(() => undefined)), options.scrapeEveryMs);
    }
  };
  const closed = new Set<number>();
  // A driver whose last calls all end before its MEASURED timer fires exits without printing
  // it: its exit closes its window instead (a few ms late at most).
  const close = (driver: number): void => {
    if (closed.has(driver)) return;
    closed.add(driver);
    lastCloseT = performance.now();
    clearInterval(ticker);
    to ??= snapshot(fleet);
  };
  const samplers = fleet.replicas.map((r) => startSampler(r.address, options.samplerPolicy ?? BENCH_POLICY.name, 100));
  const bound = (load.warmupS + load.durationS) * 1000 + 30_000;
  // Every driver ends (or fails) before the run does: none may go on loading the next fleet.
  let settled: PromiseSettledResult<DriverResult>[];
  try {
    settled = await Promise.allSettled(
      fleet.replicas.map(async (r, i) => {
        const spec: DriverSpec = { ...load, address: r.address, path: CONSUME_PATH, seed: load.seed + i };
        const args = ["--import", "tsx", join(REPO, "bench/driver/main.ts"), JSON.stringify(spec)];
        const out = await runToEnd(tools, process.execPath, args, tools.loadCpus, bound, (line) => {
          if (line === "MEASURING") open();
          if (line === "MEASURED") close(i);
        });
        close(i);
        const line = out.split("\n").find((l) => l.startsWith("RESULT "));
        if (line === undefined) throw new Error(`node driver printed no result:\n${out.slice(-2000)}`);
        return JSON.parse(line.slice(7)) as DriverResult;
      }),
    );
  } finally {
    clearInterval(ticker);
  }
  // The samplers' timers would keep the bench alive: stop them whatever happened.
  const tallies = await Promise.all(samplers.map((s) => s.stop()));
  const failedDriver = settled.find((d): d is PromiseRejectedResult => d.status === "rejected");
  if (failedDriver !== undefined) throw failedDriver.reason;
  const drivers = settled.map((d) => (d as PromiseFulfilledResult<DriverResult>).value);
  const end = snapshot(fleet);
  if (from === undefined || to === undefined) throw new Error("the drivers never all reached their measured window");
  await Promise.all(scrapes);
  const [t0, t1, tStart, tEnd] = await Promise.all([from.texts, to.texts, start.texts, end.texts]);
  const windowS = (to.t - from.t) / 1000;
  if (windowS <= 0) throw new Error("the drivers' measured windows did not overlap (one ended before another started)");
  const replicas = fleet.replicas.map((r, i) => {
    const before = t0[i] as string;
    const after = t1[i] as string;
    const c0 = parseConsumeCounts(before);
    const c1 = parseConsumeCounts(after);
    return {
      name: r.name,
      cpuS: (to?.cpu[i] as number) - (from?.cpu[i] as number),
      ok: c1.ok - c0.ok,
      errors: c1.error - c0.error,
      scrape: diffScrape(parseScrape(before), parseScrape(after)),
    };
  });
  const whole = fleet.replicas.map((_, i) => diffScrape(parseScrape(tStart[i] as string), parseScrape(tEnd[i] as string)));
  const serverErrors = fleet.replicas.reduce(
    (s, _, i) => s + parseConsumeCounts(tEnd[i] as string).error - parseConsumeCounts(tStart[i] as string).error,
    0,
  );
  const answered = fleet.replicas.reduce(
    (s, _, i) => s + parseConsumeCounts(tEnd[i] as string).ok - parseConsumeCounts(tStart[i] as string).ok,
    serverErrors,
  );
  const shed = fleet.replicas.reduce((s, _, i) => s + shedCount(tEnd[i] as string) - shedCount(tStart[i] as string), 0);
  const sampled: SampleTally = { ok: 0, failed: {} };
  for (const t of tallies) {
    sampled.ok += t.ok;
    for (const [k, v] of Object.entries(t.failed)) sampled.failed[k] = (sampled.failed[k] ?? 0) + v;
  }
  const clientFailed = drivers.reduce((s, d) => s + Object.values(d.failures).reduce((a, b) => a + b, 0), 0);
  const sampledFailed = Object.values(sampled.failed).reduce((a, b) => a + b, 0);
  // A shed call is an error in the server's count and RESOURCE_EXHAUSTED (8) at exactly one
  // client (a driver or the sampler): take it out of both, and whatever else failed remains.
  const seenShed = drivers.reduce((s, d) => s + (d.failures["8"] ?? 0), 0) + (sampled.failed["grpc-8"] ?? 0);
  return {
    load,
    windowS,
    replicas,
    wireBytes: wireBytes(from.wire, to.wire),
    crossRegionBytes: to.crossRegion - from.crossRegion,
    whole,
    loadSpanS: (lastCloseT - firstOpenT) / 1000,
    drivers,
    sampled,
    failed: serverErrors - shed + clientFailed + sampledFailed - Math.min(shed, seenShed),
    shed,
    answered,
    lateSendFraction: Math.max(...drivers.map((d) => d.lateSendFraction)),
  };
}

/** The failed calls of a run by code, drivers' and sampling client's together: `8: 12, grpc-14: 3`. */
export function failureCodes(m: FleetMeasurement): string {
  const counts: Record<string, number> = {};
  for (const d of m.drivers) {
    for (const [k, v] of Object.entries(d.failures)) {
      const code = /^\d+$/.test(k) ? `grpc-${k}` : k;
      counts[code] = (counts[code] ?? 0) + v;
    }
  }
  for (const [k, v] of Object.entries(m.sampled.failed)) counts[`sampled ${k}`] = (counts[`sampled ${k}`] ?? 0) + v;
  const parts = Object.entries(counts).map(([k, v]) => `${k}: ${v}`);
  return parts.length === 0 ? "server-side errors only" : parts.join(", ");
}

/** `tokenmesh_shed_calls_total` in one scrape (0 when absent). */
function shedCount(text: string): number {
  const m = /^tokenmesh_shed_calls_total (\S+)$/m.exec(text);
  return m === null ? 0 : Number(m[1]);
}

/** The share of the calls a run's replicas answered that their load shedder refused. */
export const shedShare = (m: FleetMeasurement): number => (m.answered > 0 ? m.shed / m.answered : 0);

/**
 * Same bar as the single-target rows: served calls, at most 0.1% failed, the driver kept up.
 * Shed calls are not failures here (the replicas' designed answer when they fall behind, no
 * token taken, no decision made): the rows count decisions made, the CPU the shed calls cost
 * stays in the figures, and each row's note gives the shed share per round.
 */
export function validFleetRun(m: FleetMeasurement, maxLate = 0.05): boolean {
  const ok = m.replicas.reduce((s, r) => s + r.ok, 0);
  return ok > 0 && m.failed <= 0.001 * ok && m.lateSendFraction <= maxLate;
}
