// The replication rows, from the rounds' fleet measurements: medians over the valid rounds,
// a verdict only with at least 3 of them, and "not measured" with the reason otherwise.

import { HOT_POLICY } from "../lib/mesh.ts";
import { type FleetMeasurement, shedShare, validFleetRun } from "../lib/mesh-load.ts";
import { type LagHistogram, lagCount, lagQuantile, mergeLag, shareAtOrBelow, sum } from "../lib/mesh-metrics.ts";
import { MIN_ROUNDS, notMeasured, type Row, ratioRow } from "../lib/report.ts";
import type { ScenarioContext } from "../lib/scenario.ts";
import { median, spread } from "../lib/stats.ts";
import { MAX_LATE_SENDS } from "./common.ts";
import type { Accuracy } from "./replication-accuracy.ts";
import { accuracySeconds } from "./replication-accuracy.ts";
import { admitted, BATCH, decisions, FLUSH_MS, MODERATE_SHARE, REPLICAS } from "./replication-setup.ts";
import type { UpdateCostRound } from "./replication-update-cost.ts";

type Results = ReadonlyMap<string, readonly FleetMeasurement[]>;

const LAG_BOUND_MS = FLUSH_MS + 5;
// Issue 14 ("Lean"): at most 16 bytes of replication payload per admitted decision. What bounds
// a miss is the protocol: a fold rewrites a key's header (and folds are shipped), so a key folded
// since the peer's ack goes whole even on protocol 2 streams; keys are not interned per link.
const BYTES_BOUND = 16;
const ACCURACY = 0.02;
/** An exact limiter on this machine must land this close to C + r*T, or the run says nothing. */
const CONTROL_TOLERANCE = 0.01;
const LINKS = REPLICAS * (REPLICAS - 1);

/**
 * Rounds that count. A saturating run is dropped when its driver fell behind like any other; an
 * open-loop lag run only for failed calls: its figure is measured between replicas, and a late
 * driver only offered its calls less evenly (the row's note gives the late share).
 */
const valid = (results: Results, id: string): FleetMeasurement[] =>
  (results.get(id) ?? []).filter((m) => validFleetRun(m, id.endsWith(":saturate") ? MAX_LATE_SENDS : 1));

function why(results: Results, id: string): string {
  const all = results.get(id) ?? [];
  if (all.length === 0) return `${id}: no round completed (see the log)`;
  return `${id}: no valid round (failed calls per round, shed ones not counted: ${all.map((m) => m.failed).join(", ")}; shed ${shedShares(all)}; worst late-send share ${all.map((m) => m.lateSendFraction.toFixed(3)).join(", ")})`;
}

/**
 * Per round, the share of calls the replicas' load shedder refused (RESOURCE_EXHAUSTED while
 * their event loop was over 500 ms behind): not failures for a round's validity (no token
 * taken, no decision made, so the figures count only decisions made and keep the shed calls'
 * CPU), but said on every row they touch.
 */
const shedShares = (runs: readonly FleetMeasurement[]): string =>
  `${runs.map((m) => `${(shedShare(m) * 100).toFixed(1)}%`).join("/")} of calls (${runs.map((m) => m.shed).join("/")})`;

const cpu = (m: FleetMeasurement): number => m.replicas.reduce((s, r) => s + r.cpuS, 0);
const perCpu = (m: FleetMeasurement): number => decisions(m) / cpu(m);
const bytesSent = (m: FleetMeasurement): number => m.replicas.reduce((s, r) => s + sum(r.scrape.bytesSent), 0);
const lag = (m: FleetMeasurement): LagHistogram => mergeLag(m.replicas.map((r) => r.scrape.lag));
const ms = (s: number): number => s * 1000;

function rounds(values: readonly number[]): string {
  return `${values.length} rounds, spread ${(spread(values) * 100).toFixed(0)}%`;
}

/** A row with a bound on the value itself (no baseline). */
function boundRow(name: string, unit: string, values: readonly number[], op: "<=" | ">=", bound: number, note: string): Row {
  const value = median(values);
  const tooFew = values.length < MIN_ROUNDS;
  return {
    name,
    value,
    unit,
    baseline: null,
    baselineName: null,
    ratio: null,
    target: `${op} ${bound} ${unit}`,
    pass: tooFew ? null : op === "<=" ? value <= bound : value >= bound,
    note: `${tooFew ? `NO VERDICT: only ${values.length} valid round(s); ` : ""}${note}; ${rounds(values)}`,
  };
}

function info(name: string, unit: string, values: readonly number[], note: string): Row {
  return {
    name,
    value: median(values),
    unit,
    baseline: null,
    baselineName: null,
    ratio: null,
    target: null,
    pass: null,
    note: `${note}; ${rounds(values)}`,
  };
}

const bytesReceived = (m: FleetMeasurement): number => m.replicas.reduce((s, r) => s + sum(r.scrape.bytesReceived), 0);
const usPerDecision = (m: FleetMeasurement): number => (cpu(m) / decisions(m)) * 1e6;

/** The throughput rows' loads: 10k uniform keys, and Zipf (s = 1.1) over 1M keys (issue 14). */
const THROUGHPUT = [
  { load: "saturate", keys: "10k uniform keys", bound: 0.5 },
  { load: "zipf", keys: "Zipf s = 1.1 over 1M keys", bound: 0.8 },
] as const;

/**
 * For a throughput miss, where the mesh's extra CPU per decision goes: the replicated store
 * (mesh replicas without peers, full run only), applying peers' key updates (estimated: the
 * bytes received over the per-update micro-benchmark's bytes per key update in 100-key deltas,
 * times its CPU per update), and the rest (sending: deltas built and encoded, gRPC streams).
 */
function throughputBound(
  mesh: readonly FleetMeasurement[],
  solo: readonly FleetMeasurement[],
  alone: readonly FleetMeasurement[],
  update: UpdateCostRound[],
): string {
  const extra = median(mesh.map(usPerDecision)) - median(solo.map(usPerDecision));
  const parts = [
    `each decision costs ${extra.toFixed(2)} us of CPU more than on a standalone replica (${median(mesh.map(usPerDecision)).toFixed(2)} against ${median(solo.map(usPerDecision)).toFixed(2)})`,
  ];
  if (alone.length > 0)
    parts.push(
      `the replicated store without peers accounts for ${(median(alone.map(usPerDecision)) - median(solo.map(usPerDecision))).toFixed(2)} us of it`,
    );
  if (update.length > 0) {
    const perKeyBytes = median(update.map((u) => u.batched.bytesPerUpdate));
    const perKeyUs = median(update.map((u) => u.batched.applyUs));
    const received = median(mesh.map((m) => bytesReceived(m) / perKeyBytes / decisions(m)));
    parts.push(
      `applying peers' updates about ${(received * perKeyUs).toFixed(2)} us (~${received.toFixed(1)} key updates received per decision, from bytes received / ${Math.round(perKeyBytes)} bytes per key update, at ${perKeyUs.toFixed(2)} us each: the per-update rows)`,
    );
  }
  parts.push("the rest is sending (deltas built, encoded and written to the peers' gRPC streams)");
  return `MISS: ${parts.join("; ")}; `;
}

function throughputRows(results: Results, update: UpdateCostRound[]): Row[] {
  const rows: Row[] = [];
  for (const t of THROUGHPUT) {
    const name = `replication: decisions per service core, mesh replica with ${REPLICAS - 1} loaded peers, ${t.keys}`;
    const meshId = `mesh:${t.load}`;
    const soloId = `solo:${t.load}`;
    const mesh = valid(results, meshId);
    const solo = valid(results, soloId);
    if (mesh.length === 0 || solo.length === 0) {
      rows.push(
        notMeasured(name, "decisions/CPU-s", `>= ${t.bound}x standalone replica`, why(results, mesh.length === 0 ? meshId : soloId)),
      );
      continue;
    }
    const served = median(mesh.map((m) => decisions(m) / m.windowS));
    const share = median(mesh.map((m) => cpu(m) / m.windowS));
    const perReplica = mesh.map((m) => m.replicas.map((r) => ((r.ok * BATCH) / r.cpuS).toFixed(0)).join("/"));
    const row = ratioRow({
      name,
      unit: "decisions/CPU-s",
      value: median(mesh.map(perCpu)),
      baseline: median(solo.map(perCpu)),
      baselineName: "standalone replica",
      bound: { op: ">=", bound: t.bound },
      rounds: Math.min(mesh.length, solo.length),
      note: `decisions / CPU-seconds of the ${REPLICAS} replicas (all on one core, each loaded by its own Node driver, ${BATCH} decisions per call, ${t.keys}, 4 connections x 8 streams), so each is a mesh replica with ${REPLICAS - 1} loaded peers; served ${Math.round(served)} decisions/s in all at ${(share * 100).toFixed(0)}% core; per replica ${perReplica.join(", ")}; baseline: ${REPLICAS} replicas with no mesh section (standalone: what runs without replication) side by side on the same core under the same load, so the ratio is the whole cost of being a mesh replica; shed by the load shedder per round: mesh ${shedShares(mesh)}, baseline ${shedShares(solo)}; mesh ${rounds(mesh.map(perCpu))}; baseline ${rounds(solo.map(perCpu))}`,
    });
    const alone = t.load === "saturate" ? valid(results, "alone:saturate") : [];
    rows.push(row.pass === false ? { ...row, note: `${throughputBound(mesh, solo, alone, update)}${row.note}` } : row);
  }
  const solo = valid(results, "solo:saturate");
  const alone = valid(results, "alone:saturate");
  if (alone.length > 0 && solo.length > 0) {
    const row = ratioRow({
      name: "replication: decisions per service core, mesh replicas without peers",
      unit: "decisions/CPU-s",
      value: median(alone.map(perCpu)),
      baseline: median(solo.map(perCpu)),
      baselineName: "standalone replica",
      bound: { op: ">=", bound: 0 },
      note: `${REPLICAS} replicas with a mesh section and no peers (the replicated store, no replication), 10k uniform keys, same load: the part of the 10k row above that is the store, not the peers; ${rounds(alone.map(perCpu))}`,
    });
    rows.push({ ...row, target: null, pass: null });
  }
  return rows;
}

function bytesRows(results: Results): Row[] {
  const name = "replication: bytes per admitted decision, 10k keys, saturated";
  const mesh = valid(results, "mesh:saturate");
  if (mesh.length === 0) return [notMeasured(name, "bytes", `<= ${BYTES_BOUND} bytes`, why(results, "mesh:saturate"))];
  const payload = (m: FleetMeasurement): number => bytesSent(m) / admitted(m);
  const wire = mesh.map((m) => m.wireBytes / admitted(m)).filter(Number.isFinite);
  const rows = [
    boundRow(
      name,
      "bytes",
      mesh.map(payload),
      "<=",
      BYTES_BOUND,
      `tokenmesh_peer_bytes_sent_total of all ${REPLICAS} replicas / decisions they admitted, relay on (default), flush ${FLUSH_MS} ms, protocol 2 (a key part leaves out a header the peer acknowledged; a fold rewrites the header, so folded keys still go whole, and keys are not interned): replication payload, without gRPC/HTTP2/TCP framing (the TCP payload is the next row); ${Math.round(median(mesh.map(admitted).map((a, i) => a / (mesh[i] as FleetMeasurement).windowS)))} decisions admitted/s; shed by the load shedder per round: ${shedShares(mesh)}`,
    ),
  ];
  if (wire.length > 0) {
    rows.push(
      info(
        "replication: TCP payload bytes per admitted decision, relay on",
        "bytes",
        wire,
        "bytes_sent + bytes_received of the replication sockets (ss -ti, kernel counters, both directions, gRPC/HTTP2 framing and acks included, TCP/IP headers not) / decisions admitted",
      ),
    );
  }
  for (const [id, what] of [
    ["mesh:moderate", "moderate load"],
    ["mesh:light", "light load"],
  ] as const) {
    const runs = valid(results, id);
    if (runs.length === 0) continue;
    rows.push(
      info(
        `replication: bytes per admitted decision, ${what}`,
        "bytes",
        runs.map(payload),
        `payload as above under the lag rows' ${what} (relay on); while a replica is active each link carries a delta per flush (~140 bytes of watermarks and records: ~${Math.round((140 * LINKS * 1000) / FLUSH_MS / 1000)} kB/s for the mesh), idle the heartbeat backs off to one a second`,
      ),
    );
  }
  const noRelay = valid(results, "no-relay:saturate");
  if (noRelay.length > 0) {
    const w = noRelay.map((m) => m.wireBytes / admitted(m)).filter(Number.isFinite);
    rows.push(
      info(
        "replication: bytes per admitted decision, relay off",
        "bytes",
        noRelay.map(payload),
        `same load and payload count with mesh.relay: false (only locally made changes are sent; enough in a full mesh)${w.length > 0 ? `; TCP payload ${median(w).toFixed(1)} bytes` : ""}`,
      ),
    );
  } else rows.push(notMeasured("replication: bytes per admitted decision, relay off", "bytes", "-", why(results, "no-relay:saturate")));
  return rows;
}

function lagFigures(runs: readonly FleetMeasurement[], q: number): { interpolated: number[]; bound: number[]; samples: number } {
  const qs = runs.map((m) => lagQuantile(lag(m), q));
  return {
    interpolated: qs.map((x) => ms(x.interpolated)),
    bound: qs.map((x) => ms(x.bucketBound)),
    samples: median(runs.map((m) => lagCount(lag(m)))),
  };
}

const bounds = (b: readonly number[]): string =>
  b.map((x) => (Number.isFinite(x) ? String(x) : "over 5000 (past the last bound)")).join("/");

const HOW =
  "tokenmesh_replication_lag_seconds of all replicas over the window (receiver clock minus the writer's slot stamp; a slot holds up to 5 ms of consumption, so the stamp can be older than the last change it carries); value = linear interpolation inside the bucket holding the quantile (the lower bound when past the last bucket)";

/** What an open-loop lag run offered and got. */
function offered(runs: readonly FleetMeasurement[], how: string): string {
  const all = median(runs.map((m) => REPLICAS * (m.load.ratePerSecond ?? Number.NaN) * m.load.decisionsPerCall));
  const perCall = [...new Set(runs.map((m) => m.load.decisionsPerCall))].join("/");
  const served = median(runs.map((m) => decisions(m) / m.windowS));
  const cpuShare = median(runs.map((m) => cpu(m) / m.windowS));
  const late = runs.map((m) => `${(m.lateSendFraction * 100).toFixed(0)}%`).join("/");
  return `open loop on a fresh mesh, ${how}: ${Math.round(all).toLocaleString("en-US")} decisions/s in all (median), over the ${REPLICAS} replicas, ${perCall} per call; served ${Math.round(served).toLocaleString("en-US")} at ${(cpuShare * 100).toFixed(0)}% core; driver sends over 5 ms late ${late}; shed by the load shedder ${shedShares(runs)}`;
}

function lagRows(results: Results): Row[] {
  const name = "replication: lag p99, loopback, moderate load";
  const moderate = valid(results, "mesh:moderate");
  const rows: Row[] = [];
  if (moderate.length === 0) rows.push(notMeasured(name, "ms", `<= ${LAG_BOUND_MS} ms`, why(results, "mesh:moderate")));
  else {
    const load = offered(moderate, `${MODERATE_SHARE * 100}% of what mesh:saturate served in the same round`);
    const p99 = lagFigures(moderate, 0.99);
    const exact = moderate.map((m) => shareAtOrBelow(lag(m), LAG_BOUND_MS / 1000));
    const row = boundRow(
      name,
      "ms",
      p99.interpolated,
      "<=",
      LAG_BOUND_MS,
      `${load}; ${HOW}; p99 bucket bound ${bounds(p99.bound)} ms; share of samples <= ${LAG_BOUND_MS} ms (a bucket bound, so the verdict is exact) ${exact.map((x) => (x === undefined ? "-" : `${(x * 100).toFixed(2)}%`)).join("/")}; ~${Math.round(p99.samples)} samples per round, scraped every 250 ms`,
    );
    // What bounds a miss: a sample is at least the slot's age (up to one slot, 5 ms) plus the
    // wait for the next flush (up to one flush interval): the bound leaves 5 ms of slot age and
    // nothing for the time the delta waits behind other work on the replicas' shared core.
    const cpuShare = median(moderate.map((m) => cpu(m) / m.windowS));
    const over = median(exact.map((x) => (x === undefined ? Number.NaN : 1 - x)));
    const bound =
      row.pass === false
        ? `MISS: ${(over * 100).toFixed(1)}% of the samples are over ${LAG_BOUND_MS} ms, p50 ${median(lagFigures(moderate, 0.5).interpolated).toFixed(1)} ms; by construction a sample holds the slot's age (up to ${FLUSH_MS} ms: a slot's stamp is its start) and the wait for the next flush (up to ${FLUSH_MS} ms), which use up the bound, so the tail is the time deltas and acks wait for the event loop: the ${REPLICAS} replicas share one core, ${(cpuShare * 100).toFixed(0)}% busy at this load, and the machine's other work comes on top; `
        : "";
    rows.push({ ...row, target: `<= ${LAG_BOUND_MS} ms (flush ${FLUSH_MS} ms + 5)`, note: `${bound}${row.note}` });
    const p50 = lagFigures(moderate, 0.5);
    rows.push(
      info("replication: lag p50, loopback, moderate load", "ms", p50.interpolated, `${load}; bucket bound ${bounds(p50.bound)} ms`),
    );
  }
  const light = valid(results, "mesh:light");
  if (light.length > 0) {
    const load = offered(light, "a fixed light load");
    for (const q of [0.5, 0.99]) {
      const f = lagFigures(light, q);
      rows.push(
        info(`replication: lag p${q * 100}, loopback, light load`, "ms", f.interpolated, `${load}; bucket bound ${bounds(f.bound)} ms`),
      );
    }
  }
  const saturated = valid(results, "mesh:saturate");
  if (saturated.length > 0) {
    const p99 = lagFigures(saturated, 0.99);
    rows.push(
      info(
        "replication: lag p99, loopback, saturated",
        "ms",
        p99.interpolated,
        `the saturating run of the throughput row; bucket bound ${bounds(p99.bound)} ms; scraped only at the window's ends, so each replica's figure holds at most the first 100,000 samples after the window opened (the replica drops the rest until the next scrape)`,
      ),
    );
  }
  return rows;
}

function deltaRows(results: Results): Row[] {
  const rows: Row[] = [];
  for (const [id, what] of [
    ["mesh:saturate", "saturated"],
    ["mesh:moderate", "moderate load"],
    ["mesh:light", "light load"],
  ] as const) {
    const runs = valid(results, id);
    if (runs.length === 0) continue;
    const perLink = runs.map((m) => m.replicas.reduce((s, r) => s + sum(r.scrape.deltasSent), 0) / m.windowS / LINKS);
    const keysPerDelta = runs.map((m) => {
      const deltas = m.replicas.reduce((s, r) => s + sum(r.scrape.deltasSent), 0);
      return lagCount(lag(m)) / deltas;
    });
    rows.push(
      info(
        `replication: deltas/s per peer, ${what}`,
        "deltas/s",
        perLink,
        `tokenmesh_peer_deltas_sent_total over the ${LINKS} directed links / window; at most ${1000 / FLUSH_MS}/s at one per flush${id === "mesh:saturate" ? "" : `; ~${median(keysPerDelta).toFixed(0)} keys per delta (lag samples / deltas)`}`,
      ),
    );
  }
  return rows;
}

function accuracyRow(ctx: ScenarioContext, accuracy: Accuracy | string, control: Accuracy | string): Row {
  const seconds = accuracySeconds(ctx);
  const name = `accuracy: hot key, ${REPLICAS} replicas saturated, ${seconds} s${ctx.settings.quick ? " (quick; 30 s in the full run)" : ""}`;
  const target = `within ${ACCURACY * 100}% of C + r*T`;
  if (typeof accuracy === "string") return notMeasured(name, "tokens", target, accuracy);
  const ratio = accuracy.admitted / accuracy.ideal;
  // Under-admission also comes from stalls: a bucket no replica is deciding on overflows.
  const controlOk = typeof control !== "string" && control.valid && Math.abs(control.admitted / control.ideal - 1) <= CONTROL_TOLERANCE;
  const calls = accuracy.admitted + accuracy.denied;
  return {
    name,
    value: accuracy.admitted,
    unit: "tokens",
    baseline: accuracy.ideal,
    baselineName: "ideal C + r*T",
    ratio,
    target,
    pass: accuracy.valid && controlOk ? Math.abs(ratio - 1) <= ACCURACY : null,
    note: `${accuracy.valid ? "" : "NO VERDICT: too many failed calls; "}${controlOk ? "" : `NO VERDICT: the method check (one standalone replica) missed its ideal by over ${CONTROL_TOLERANCE * 100}%, so the machine, not the mesh, set the figure; `}policy C = ${HOT_POLICY.capacity}, r = ${HOT_POLICY.refillPerSecond}/s, one key never used before, 1 decision per call from all ${REPLICAS} replicas (2 connections x 16 streams each), T = ${accuracy.spanS.toFixed(3)} s from the first send to the last; admitted ${accuracy.perReplica.join(" + ")} (replicas' own counts) of ${calls.toLocaleString("en-US")} decisions; ${(100 * (ratio - 1)).toFixed(2)}% off; worst call ${accuracy.worstCallMs.toFixed(0)} ms (C/r = ${(1000 * HOT_POLICY.capacity) / HOT_POLICY.refillPerSecond} ms: a stall of every replica longer than that loses refill); one run; method check, the same load on one standalone replica for ${typeof control === "string" ? "-" : `${control.seconds} s: ${control.admitted} admitted, ideal ${control.ideal.toFixed(0)}, ${(100 * (control.admitted / control.ideal - 1)).toFixed(2)}% off`}${typeof control === "string" ? `: ${control}` : ""}`,
  };
}

export function replicationRows(
  ctx: ScenarioContext,
  results: Results,
  accuracy: Accuracy | string,
  control: Accuracy | string,
  update: readonly (UpdateCostRound | undefined)[] = [],
): Row[] {
  return [
    ...throughputRows(
      results,
      update.filter((u): u is UpdateCostRound => u !== undefined),
    ),
    ...bytesRows(results),
    ...lagRows(results),
    accuracyRow(ctx, accuracy, control),
    ...deltaRows(results),
  ];
}
