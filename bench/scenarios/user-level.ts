// The user-level comparison: the same Express app (`GET /api`, keyed on `x-api-key` over 10k
// keys) behind each limiter a team might run, measured from outside in alternating rounds. The
// targets compare tokenmesh with rate-limiter-flexible on Redis, what it would replace:
//
//   added p50 at 1 connection      standalone <= 1.0x rfl+Redis, 3-replica mesh <= 1.2x
//   CPU per request (50 conns)     standalone <= 0.9x rfl+Redis, mesh <= 1.2x standalone
//   requests/s at 50 connections   >= 1.0x rfl+Redis (standalone and mesh)
//
// "Added" latency is each round's p50 minus the no-limiter app's p50 in the same round. --quick
// runs only the setups the targets need (no limiter, rfl+Redis, tokenmesh standalone and mesh)
// and the one that bounds their misses: the same client against a no-op grpc-js server
// ("tokenmesh-floor"), what the app pays for any server on grpc-js. Each row that misses says
// in its note what holds it, with that setup's figure from the same rounds (bench/lib/bounds.ts).

import { floorBound, withBound } from "../lib/bounds.ts";
import { type Bound, notMeasured, type Row, ratioRow } from "../lib/report.ts";
import type { Scenario, ScenarioContext } from "../lib/scenario.ts";
import { median, spread } from "../lib/stats.ts";
import {
  CONNECTIONS,
  KEYS,
  measureSetup,
  SETUP_LABEL,
  SETUPS,
  type SetupName,
  startSetup,
  type UserLevelMeasurement,
} from "../lib/user-level.ts";

const QUICK_SETUPS: readonly SetupName[] = ["none", "rlf-redis", "tokenmesh", "tokenmesh-mesh", "tokenmesh-floor"];

type Rounds = ReadonlyMap<SetupName, readonly (UserLevelMeasurement | undefined)[]>;

const valid = (m: UserLevelMeasurement | undefined): m is UserLevelMeasurement =>
  m !== undefined && m.failures <= 0.001 * Math.max(1, m.latencyUs.count + m.requestsPerSecond);

/** Per round: pick(setup) (and the no-limiter app's figure, for added latency); rounds where either is invalid drop out. */
function perRound(rounds: Rounds, name: SetupName, pick: (m: UserLevelMeasurement, none: UserLevelMeasurement) => number): number[] {
  const mine = rounds.get(name) ?? [];
  const none = rounds.get("none") ?? [];
  const out: number[] = [];
  mine.forEach((m, i) => {
    const n = none[i];
    if (valid(m) && valid(n)) out.push(pick(m, n));
  });
  return out;
}

const added = (m: UserLevelMeasurement, none: UserLevelMeasurement): number => m.latencyUs.p50 - none.latencyUs.p50;
const cpu = (m: UserLevelMeasurement): number => m.cpuUsPerRequest;
const rate = (m: UserLevelMeasurement): number => m.requestsPerSecond;

const describe = (values: readonly number[]): string => `${values.length} rounds, spread ${(spread(values) * 100).toFixed(0)}%`;

function compare(
  rounds: Rounds,
  spec: { name: string; unit: string; pick: (m: UserLevelMeasurement, n: UserLevelMeasurement) => number; bound: Bound },
  mine: SetupName,
  baseline: SetupName,
  note: string,
): Row {
  const a = perRound(rounds, mine, spec.pick);
  const b = perRound(rounds, baseline, spec.pick);
  const target = `${spec.bound.op} ${spec.bound.bound}x ${SETUP_LABEL[baseline]}`;
  if (a.length === 0 || b.length === 0)
    return notMeasured(spec.name, spec.unit, target, `no valid round of ${a.length === 0 ? mine : baseline}`);
  return ratioRow({
    name: spec.name,
    unit: spec.unit,
    value: median(a),
    baseline: median(b),
    baselineName: SETUP_LABEL[baseline],
    bound: spec.bound,
    rounds: Math.min(a.length, b.length),
    note: `${note}; ${mine} ${describe(a)}; ${baseline} ${describe(b)}`,
  });
}

function rows(rounds: Rounds): Row[] {
  const latency = { unit: "us", pick: added };
  const perRequest = { unit: "us", pick: cpu };
  const throughput = { unit: "req/s", pick: rate };
  // How far the no-limiter app's own p50 moved between rounds: the noise any added figure sits in.
  const noneP50 = (rounds.get("none") ?? []).filter(valid).map((m) => m.latencyUs.p50);
  const noise =
    noneP50.length === 0
      ? ""
      : `; the no-limiter app's p50 ranged ${Math.min(...noneP50).toFixed(0)}-${Math.max(...noneP50).toFixed(0)} us over the rounds`;
  const latencyNote = `p50 of the app at 1 connection minus the no-limiter app's p50 in the same round; Node HTTP/1.1 driver, one request in flight, ${KEYS} keys${noise}`;
  const cpuNote = `user+system CPU of the app and the limiter's processes (redis-server, replicas) over the ${CONNECTIONS}-connection run / requests`;
  const rateNote = `wrk, ${CONNECTIONS} connections, one thread, on the app's core`;
  const mid = (name: SetupName, pick: (m: UserLevelMeasurement, n: UserLevelMeasurement) => number): number | undefined => {
    const xs = perRound(rounds, name, pick).filter(Number.isFinite);
    return xs.length === 0 ? undefined : median(xs);
  };
  const floorName = "tokenmesh-floor (the same client against a no-op grpc-js server)";
  /** The floor setup's figure against the target's baseline, in the same rounds. */
  const againstFloor = (
    pick: (m: UserLevelMeasurement, n: UserLevelMeasurement) => number,
    mine: SetupName,
    baseline: SetupName,
    bound: Bound,
    unit: string,
  ): string => {
    const f = mid("tokenmesh-floor", pick);
    const b = mid(baseline, pick);
    const m = mid(mine, pick);
    if (f === undefined || b === undefined || m === undefined) return "tokenmesh-floor not measured in these rounds";
    return floorBound({
      floorName,
      floorShort: "tokenmesh-floor",
      floorRatio: f / b,
      mineOverFloor: m / f,
      bound: bound.bound,
      higherIsBetter: bound.op === ">=",
      detail: `tokenmesh-floor ${f.toFixed(0)} ${unit}, ${SETUP_LABEL[baseline]} ${b.toFixed(0)} ${unit}`,
    });
  };
  // Where the mesh's extra CPU per request is spent: in the app (the client) or the replicas.
  const limiterUs = (m: UserLevelMeasurement): number => (m.limiterCpuShare * 1e6) / m.requestsPerSecond;
  const appUs = (m: UserLevelMeasurement): number => m.cpuUsPerRequest - limiterUs(m);
  const split = (name: SetupName): string => {
    const l = mid(name, limiterUs);
    const a = mid(name, appUs);
    const share = mid(name, (m) => m.limiterCpuShare * 100);
    return l === undefined || a === undefined || share === undefined
      ? `${name} not measured`
      : `${name}: app ${a.toFixed(0)} + limiter's processes ${l.toFixed(0)} us/request, those at ${share.toFixed(0)}% of their core`;
  };
  const meshBound = `the replicas' share: ${split("tokenmesh-mesh")} against ${split("tokenmesh")} (the mesh's 3 replicas share one core with their replication traffic, the replication core's idle and per-update costs)`;
  const latencyBound = { op: "<=", bound: 1.0 } as const;
  const meshLatencyBound = { op: "<=", bound: 1.2 } as const;
  const cpuBound = { op: "<=", bound: 0.9 } as const;
  const meshCpuBound = { op: "<=", bound: 1.2 } as const;
  const rateBound = { op: ">=", bound: 1.0 } as const;
  const out: Row[] = [
    withBound(
      compare(
        rounds,
        { ...latency, name: "user-level: added p50, 1 connection, standalone", bound: latencyBound },
        "tokenmesh",
        "rlf-redis",
        latencyNote,
      ),
      againstFloor(added, "tokenmesh", "rlf-redis", latencyBound, "us added"),
    ),
    withBound(
      compare(
        rounds,
        { ...latency, name: "user-level: added p50, 1 connection, 3-replica mesh", bound: meshLatencyBound },
        "tokenmesh-mesh",
        "rlf-redis",
        latencyNote,
      ),
      `${againstFloor(added, "tokenmesh-mesh", "rlf-redis", meshLatencyBound, "us added")}; ${meshBound}`,
    ),
    withBound(
      compare(
        rounds,
        { ...perRequest, name: "user-level: CPU per request, standalone", bound: cpuBound },
        "tokenmesh",
        "rlf-redis",
        cpuNote,
      ),
      `${againstFloor(cpu, "tokenmesh", "rlf-redis", cpuBound, "us/request")}; ${split("tokenmesh")}; ${split("rlf-redis")}`,
    ),
    withBound(
      compare(
        rounds,
        { ...perRequest, name: "user-level: CPU per request, 3-replica mesh", bound: meshCpuBound },
        "tokenmesh-mesh",
        "tokenmesh",
        cpuNote,
      ),
      meshBound,
    ),
    withBound(
      compare(
        rounds,
        { ...throughput, name: `user-level: req/s at ${CONNECTIONS} connections, standalone`, bound: rateBound },
        "tokenmesh",
        "rlf-redis",
        rateNote,
      ),
      `${againstFloor(rate, "tokenmesh", "rlf-redis", rateBound, "req/s")}; the app's core is saturated (app and wrk), so req/s follows the app's CPU per request: ${split("tokenmesh")}; ${split("rlf-redis")}`,
    ),
    withBound(
      compare(
        rounds,
        { ...throughput, name: `user-level: req/s at ${CONNECTIONS} connections, 3-replica mesh`, bound: rateBound },
        "tokenmesh-mesh",
        "rlf-redis",
        rateNote,
      ),
      `${againstFloor(rate, "tokenmesh-mesh", "rlf-redis", rateBound, "req/s")}; ${meshBound}`,
    ),
  ];
  // The side-by-side table, one informational row per limiter (value: p50 at 1 connection).
  for (const name of SETUPS) {
    const ms = (rounds.get(name) ?? []).filter(valid);
    if (ms.length === 0) continue;
    const addedUs = perRound(rounds, name, added);
    const m = (pick: (x: UserLevelMeasurement) => number): number => median(ms.map(pick));
    out.push({
      name: `user-level side by side: ${SETUP_LABEL[name]}`,
      value: m((x) => x.latencyUs.p50),
      unit: "us p50",
      baseline: null,
      baselineName: null,
      ratio: null,
      target: null,
      pass: null,
      note: [
        `added p50 ${name === "none" ? "-" : `${median(addedUs).toFixed(0)} us`}`,
        `p99 ${m((x) => x.latencyUs.p99).toFixed(0)} us at 1 connection`,
        `CPU ${m(cpu).toFixed(0)} us/request at ${CONNECTIONS} connections (${m((x) => x.cpuUsPerRequestLow).toFixed(0)} at 1)`,
        `${m(rate).toFixed(0)} req/s at ${CONNECTIONS} connections`,
        `limiter processes ${(m((x) => x.limiterCpuShare) * 100).toFixed(0)}% of a core`,
        `${ms.length} rounds`,
      ].join(", "),
    });
  }
  return out;
}

export const userLevel: Scenario = {
  id: "user-level",
  phase: 3,
  async run(ctx: ScenarioContext): Promise<readonly Row[]> {
    const target = "see the issue's targets";
    if (ctx.tools.wrk === null || ctx.tools.redisServer === null) {
      const why = ctx.tools.wrk === null ? "wrk is not installed" : "redis-server is not installed";
      return [notMeasured("user-level: the Express app behind each limiter", "-", target, why)];
    }
    const setups = ctx.settings.quick ? QUICK_SETUPS : SETUPS;
    const timing = {
      warmupS: ctx.settings.quick ? 0.5 : 2,
      latencyS: ctx.settings.lowLoadS,
      throughputS: ctx.settings.quick ? 1 : 8,
      seed: ctx.settings.seed,
    };
    const rounds = new Map<SetupName, (UserLevelMeasurement | undefined)[]>();
    for (let round = 1; round <= ctx.settings.rounds; round++) {
      for (const name of setups) {
        let m: UserLevelMeasurement | undefined;
        try {
          const setup = await startSetup(ctx.tools, name);
          try {
            m = await measureSetup(ctx.tools, setup, timing);
          } finally {
            await setup.stop();
          }
          ctx.log(
            `user-level round ${round} ${name}: p50 ${m.latencyUs.p50.toFixed(0)}us p99 ${m.latencyUs.p99.toFixed(0)}us, ${m.requestsPerSecond.toFixed(0)} req/s, ${m.cpuUsPerRequest.toFixed(0)} us CPU/req${m.failures > 0 ? `, ${m.failures} FAILURES` : ""}`,
          );
        } catch (err) {
          ctx.log(`user-level round ${round} ${name}: failed: ${err instanceof Error ? err.message : String(err)}`);
        }
        rounds.set(name, [...(rounds.get(name) ?? []), m]);
      }
    }
    return rows(rounds);
  },
};
