// Runs the Python client's unittest suite (clients/python/tests: the sync and asyncio clients,
// the ASGI middleware in FastAPI and Starlette apps under uvicorn, the offline `pip install`)
// against real grpc-js servers started here, and type-checks the package with mypy. It uses
// Debian's /usr/bin/python3 with the packages scripts/ensure-system-deps.ts installs; a missing
// one fails the run (the import error is the first thing in the output), it is never skipped.

import { execFile } from "node:child_process";
import { tmpdir } from "node:os";
import { resolve } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { resolveConfig } from "../../../src/config/load.ts";
import { type RunningServer, startServer } from "../../../src/server/tokenmesh-server.ts";
import { TEST_POLICIES } from "./helpers/server.ts";

const pythonDir = resolve(import.meta.dirname, "../../python");
const python = process.env.TOKENMESH_PYTHON ?? "/usr/bin/python3";

// Must match CAPPED_MAX_DECISIONS in clients/python/tests/tokenmesh_server.py.
const CAPPED_MAX_DECISIONS = 50;
const POLICIES = {
  ...TEST_POLICIES,
  custom: { capacity: 10, refill: 10, per: "1s", inline: { maxCapacity: 1000, maxRefillPerSecond: 1000 } },
};

async function start(metrics: boolean, limits: Record<string, number> = {}): Promise<RunningServer> {
  const config = resolveConfig(
    {
      listen: "127.0.0.1:0",
      metricsListen: metrics ? "127.0.0.1:0" : null,
      httpListen: null,
      logLevel: "silent",
      dataDir: null,
      policies: POLICIES,
      limits,
    },
    "python-client-test",
  );
  return startServer({ config, log: pino({ level: "silent" }) });
}

function run(args: readonly string[], cwd: string, env: Record<string, string>, timeoutMs: number) {
  return new Promise<{ code: number | null; output: string }>((done) => {
    let output = "";
    const child = execFile(
      python,
      args,
      { cwd, env: { ...process.env, ...env, PYTHONDONTWRITEBYTECODE: "1" }, timeout: timeoutMs },
      (err) => done({ code: err === null ? 0 : typeof err.code === "number" ? err.code : null, output }),
    );
    child.stdout?.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.stderr?.on("data", (d: Buffer) => {
      output += d.toString();
    });
  });
}

let main: RunningServer;
let capped: RunningServer;
beforeAll(async () => {
  [main, capped] = await Promise.all([start(true), start(false, { maxDecisionsPerRequest: CAPPED_MAX_DECISIONS })]);
});
afterAll(async () => {
  await Promise.all([main?.shutdown(), capped?.shutdown()]);
});

const consumeRpcs = async (server: RunningServer): Promise<number> => {
  const metric = await server.metrics.registry.getSingleMetricAsString("tokenmesh_request_duration_seconds");
  let total = 0;
  for (const line of metric.split("\n")) {
    if (line.startsWith("tokenmesh_request_duration_seconds_count") && line.includes("RateLimiter") && line.includes('Consume"')) {
      total += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return total;
};

it("passes the Python client's tests against the grpc-js server", async () => {
  const before = await consumeRpcs(main);
  const { code, output } = await run(
    ["-m", "unittest", "discover", "-s", resolve(pythonDir, "tests"), "-v"],
    pythonDir,
    {
      TOKENMESH_ADDRESS: `127.0.0.1:${main.port}`,
      TOKENMESH_METRICS_URL: `http://127.0.0.1:${main.metricsPort}/metrics`,
      TOKENMESH_CAPPED_ADDRESS: `127.0.0.1:${capped.port}`,
    },
    240_000,
  );
  expect(output).toMatch(/Ran \d+ tests/);
  expect({ code, tail: output.slice(-4000) }).toMatchObject({ code: 0 });
  expect(output).toMatch(/\nOK\n/);
  // The calls really went to these servers (not stray ones from the environment).
  expect((await consumeRpcs(main)) - before).toBeGreaterThan(50);
  expect(await consumeRpcs(capped)).toBeGreaterThanOrEqual(7);
}, 300_000);

it("type-checks the Python client and its tests with mypy --strict", async () => {
  const { code, output } = await run(["-m", "mypy", "--cache-dir", resolve(tmpdir(), "tokenmesh-mypy-cache")], pythonDir, {}, 240_000);
  expect({ code, output }).toMatchObject({ code: 0 });
  expect(output).toMatch(/^Success: no issues found in \d+ source files/m);
}, 300_000);
