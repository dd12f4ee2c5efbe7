// The cost of each door against the gRPC Consume baseline, in the same rounds on one server:
// server CPU per call of Envoy's ShouldRateLimit, of Consume over HTTP/JSON (Connect) and of
// GET /v1/check, as ratios to a gRPC Consume (one decision per call, 10k keys). The doors run
// one after another on the same process, in a rotating order per round, so drift between
// minutes falls on each door alike. Targets: RLS <= 2x, HTTP <= 3x a gRPC Consume.

import { DOORS, type Door, type DoorMeasurement, measureDoor, startDoorsServer } from "../lib/doors-load.ts";
import { notMeasured, type Row, ratioRow } from "../lib/report.ts";
import type { Scenario, ScenarioContext } from "../lib/scenario.ts";
import { median, spread } from "../lib/stats.ts";

const IN_FLIGHT = 32;

const ROWS: readonly { door: Exclude<Door, "grpc-consume">; name: string; bound: number }[] = [
  { door: "rls", name: "Envoy ShouldRateLimit, 1 descriptor: server CPU per call", bound: 2 },
  { door: "http-consume", name: "HTTP/JSON Consume (Connect), 1 decision: server CPU per call", bound: 3 },
  { door: "http-check", name: "HTTP GET /v1/check: server CPU per call", bound: 3 },
];

async function rounds(ctx: ScenarioContext): Promise<Map<Door, DoorMeasurement[]>> {
  const byDoor = new Map<Door, DoorMeasurement[]>(DOORS.map((d) => [d, []]));
  for (let round = 0; round < ctx.settings.rounds; round++) {
    const server = await startDoorsServer(ctx.tools);
    try {
      for (let i = 0; i < DOORS.length; i++) {
        const door = DOORS[(i + round) % DOORS.length] as Door;
        const m = await measureDoor(server, door, {
          inFlight: IN_FLIGHT,
          warmupS: ctx.settings.warmupS,
          runS: ctx.settings.runS,
          seed: ctx.settings.seed + round,
        });
        ctx.log(`doors round ${round + 1}: ${door} ${m.calls} calls, ${m.errors} errors, ${m.serverCpuUsPerCall.toFixed(1)} us CPU/call`);
        byDoor.get(door)?.push(m);
      }
    } finally {
      await server.child.stop();
    }
  }
  return byDoor;
}

export const doors: Scenario = {
  id: "doors",
  phase: 3,
  async run(ctx: ScenarioContext): Promise<readonly Row[]> {
    const byDoor = await rounds(ctx);
    const valid = (door: Door) => (byDoor.get(door) ?? []).filter((m) => m.calls > 0 && m.errors === 0);
    const base = valid("grpc-consume").map((m) => m.serverCpuUsPerCall);
    return ROWS.map((row) => {
      const runs = valid(row.door);
      if (base.length === 0 || runs.length === 0) {
        return notMeasured(row.name, "CPU-us/call", `<= ${row.bound}x gRPC Consume`, "no error-free run of a door");
      }
      const cost = runs.map((m) => m.serverCpuUsPerCall);
      const rate = median(runs.map((m) => m.callsPerSecond));
      return ratioRow({
        name: row.name,
        unit: "CPU-us/call",
        value: median(cost),
        baseline: median(base),
        baselineName: "gRPC Consume",
        bound: { op: "<=", bound: row.bound },
        rounds: Math.min(base.length, runs.length),
        note: `server CPU (/proc) per call, ${IN_FLIGHT} in flight from one Node driver; spread ${(spread(cost) * 100).toFixed(0)}%; ${Math.round(rate)} calls/s`,
      });
    });
  },
};
