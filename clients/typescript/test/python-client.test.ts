// Runs the Python client's unittest suite (clients/python/tests) against a real grpc-js server
// started here: the check that a C-core gRPC client talks to tokenmesh. It uses Debian's
// /usr/bin/python3 (python3-grpcio, python3-protobuf); a missing package fails the run (the
// import error is the first thing in the output), it is never skipped.

import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./helpers/server.ts";

const pythonDir = resolve(import.meta.dirname, "../../python");
const python = process.env.TOKENMESH_PYTHON ?? "/usr/bin/python3";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

it("passes the Python client's tests against the grpc-js server", async () => {
  const before = await server.rpcs("Consume");
  const { code, output } = await new Promise<{ code: number | null; output: string }>((done) => {
    const child = execFile(
      python,
      ["-m", "unittest", "discover", "-s", resolve(pythonDir, "tests"), "-v"],
      { env: { ...process.env, TOKENMESH_ADDRESS: server.address, PYTHONDONTWRITEBYTECODE: "1" }, timeout: 60_000 },
      (err) => done({ code: err === null ? 0 : typeof err.code === "number" ? err.code : null, output: `${stdout}${stderr}` }),
    );
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
  });
  expect(output).toMatch(/Ran \d+ tests/);
  expect({ code, tail: output.slice(-3000) }).toMatchObject({ code: 0 });
  expect(output).toMatch(/\nOK\n/);
  // The calls really went to this server (not a stray one from the environment).
  expect((await server.rpcs("Consume")) - before).toBeGreaterThan(10);
}, 90_000);
