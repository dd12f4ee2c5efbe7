// The user-level comparison: the same Express app (`GET /api`, keyed on `x-api-key` over 10k
// keys) behind each limiter a team might run, measured from outside in alternating rounds. The
// targets compare tokenmesh with rate-limiter-flexible on Redis, what it would replace:
//
//   added p50 at 1 connection      standalone <= 1.0x rfl+Redis, 3-replica mesh <= 1.2x
//   CPU per request (50 conns)     standalone <= 0.9x rfl+Redis, mesh <= 1.2x standalone
//   requests/s at 50 connections   >= 1.0x rfl+Redis (standalone and mesh)
//
// "Added" latency is each round's p50 minus the no-limiter app's p50 in the same round. --quick
// runs only the setups the targets need (no limiter, rfl+Redis, tokenmesh standalone and mesh).

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

const QUICK_SETUPS: readonly SetupName[] = ["none", "rlf-redis", "tokenmesh", "tokenmesh-mesh"];

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
  const latencyNote = `p50 of the app at 1 connection minus the no-limiter app's p50 in the same round; Node HTTP/1.1 driver, one request in flight, ${KEYS} keys`;
  const cpuNote = `user+system CPU of the app and the limiter's processes (redis-server, replicas) over the ${CONNECTIONS}-connection run / requests`;
  const rateNote = `wrk, ${CONNECTIONS} connections, one thread, on the app's core`;
  const out: Row[] = [
    compare(
      rounds,
      { ...latency, name: "user-level: added p50, 1 connection, standalone", bound: { op: "<=", bound: 1.0 } },
      "tokenmesh",
      "rlf-redis",
      latencyNote,
    ),
    compare(
      rounds,
      { ...latency, name: "user-level: added p50, 1 connection, 3-replica mesh", bound: { op: "<=", bound: 1.2 } },
      "tokenmesh-mesh",
      "rlf-redis",
      latencyNote,
    ),
    compare(
      rounds,
      { ...perRequest, name: "user-level: CPU per request, standalone", bound: { op: "<=", bound: 0.9 } },
      "tokenmesh",
      "rlf-redis",
      cpuNote,
    ),
    compare(
      rounds,
      { ...perRequest, name: "user-level: CPU per request, 3-replica mesh", bound: { op: "<=", bound: 1.2 } },
      "tokenmesh-mesh",
      "tokenmesh",
      cpuNote,
    ),
    compare(
      rounds,
      { ...throughput, name: `user-level: req/s at ${CONNECTIONS} connections, standalone`, bound: { op: ">=", bound: 1.0 } },
      "tokenmesh",
      "rlf-redis",
      rateNote,
    ),
    compare(
      rounds,
      { ...throughput, name: `user-level: req/s at ${CONNECTIONS} connections, 3-replica mesh`, bound: { op: ">=", bound: 1.0 } },
      "tokenmesh-mesh",
      "rlf-redis",
      rateNote,
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
