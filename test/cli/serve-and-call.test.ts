// The command line as a person uses it: `tokenmesh serve` as a real process, `tokenmesh consume`
// and `query` against it, config errors that name the field, env overrides, and SIGTERM draining
// in-flight calls before exiting 0.

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createChannel, createClient, Status } from "nice-grpc";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, runCli, type Spawned, spawnCli } from "../support/process.ts";
import { rateLimiterDefinition } from "../support/server.ts";

const dir = mkdtempSync(join(tmpdir(), "tokenmesh-cli-"));

function writeConfig(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe("tokenmesh serve / consume / query", () => {
  let server: Spawned;
  let address: string;
  let metricsPort: number;

  beforeAll(async () => {
    const port = await freePort();
    metricsPort = await freePort();
    address = `127.0.0.1:${port}`;
    const config = writeConfig(
      "ok.yaml",
      `listen: 127.0.0.1:1\nmetricsListen: 127.0.0.1:${metricsPort}\nhttpListen: null\npolicies:\n  login: { capacity: 2, refill: 1, per: 10s }\n`,
    );
    // TOKENMESH_LISTEN overrides the file's (unusable) port 1.
    server = spawnCli(["serve", "--config", config], { TOKENMESH_LISTEN: address, TOKENMESH_LOG_LEVEL: "info" });
    await server.waitFor("tokenmesh serving");
  });

  afterAll(async () => {
    if (server.child.exitCode === null) server.child.kill("SIGKILL");
  });

  it("consumes until denied, with exit codes 0 then 1 and the retry time of the policy", async () => {
    const args = ["--address", address, "--policy", "login", "--key", "carol"];
    const firstAt = Date.now();
    const first = await runCli(["consume", ...args]);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^allowed {2}login\/carol {2}remaining=1\/2 {2}retry_after=0 {2}reset_after=10\d{3}(\.\d+)?ms\n$/);
    expect((await runCli(["consume", ...args])).code).toBe(0);
    const denied = await runCli(["consume", ...args, "--json"]);
    expect(denied.code).toBe(1);
    const parsed = JSON.parse(denied.stdout) as { allowed: boolean; remaining: number; retryAfterMs: number; limit: { capacity: number } };
    expect(parsed).toMatchObject({ allowed: false, remaining: 0, limit: { capacity: 2, refillTokens: 1, refillPeriodMs: 10_000 } });
    // The first token came back 10 s after the first consume, less the time these processes took.
    expect(parsed.retryAfterMs).toBeGreaterThanOrEqual(10_000 - (Date.now() - firstAt) - 1);
    expect(parsed.retryAfterMs).toBeLessThanOrEqual(10_000);
    const query = await runCli(["query", ...args]);
    expect(query.code).toBe(1);
    expect(query.stdout).toMatch(/^would deny {2}login\/carol {2}remaining=0\/2/);
  });

  it("prints the server's error and exits 2 on bad input", async () => {
    const r = await runCli(["consume", "--address", address, "--policy", "nope", "--key", "k"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('INVALID_ARGUMENT: decisions[0].buckets[0].policy: unknown policy "nope" (known: login)');
  });

  it("serves Prometheus metrics over HTTP", async () => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('tokenmesh_decisions_total{policy="login",result="denied"}');
  });

  it("drains in-flight calls on SIGTERM and exits 0", async () => {
    const channel = createChannel(address);
    const client = createClient(rateLimiterDefinition, channel);
    const decisions = Array.from({ length: 1000 }, (_, i) => ({ buckets: [{ policy: "login", key: `drain-${i}` }] }));
    const calls = Array.from({ length: 50 }, () =>
      client.consume({ decisions }).then(
        (r) => (r.results.length === 1000 ? "ok" : "short"),
        // UNAVAILABLE: arrived while draining; RESOURCE_EXHAUSTED: shed, 50k decisions at once
        // on a loaded machine can put the loop past limits.shedEventLoopLag. Both are refusals.
        (e: { code?: Status }) =>
          e.code === Status.UNAVAILABLE || e.code === Status.RESOURCE_EXHAUSTED ? "refused" : `error ${String(e.code)}`,
      ),
    );
    await calls[0];
    server.child.kill("SIGTERM");
    const outcomes = await Promise.all(calls);
    channel.close();
    // Every call that reached the server was answered in full; none failed otherwise or hung.
    expect(outcomes.every((o) => o === "ok" || o === "refused")).toBe(true);
    expect(outcomes.filter((o) => o === "ok").length).toBeGreaterThan(0);
    expect(await server.exited()).toBe(0);
    expect(server.stdout()).toContain("tokenmesh stopped");
  });
});

describe("config errors", () => {
  it("names every bad field and exits 2", async () => {
    const config = writeConfig(
      "bad.yaml",
      "listen: nowhere\nlimits: { maxKeys: 0 }\npolicies:\n  api: { capacity: 0, refill: 1, per: 1 minute }\n  x: { capacity: 1, refill: 1, per: 1s, burst: 3 }\n",
    );
    const r = await runCli(["serve", "--config", config]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`invalid config ${config}`);
    expect(r.stderr).toContain("listen: must be HOST:PORT");
    expect(r.stderr).toContain("limits.maxKeys:");
    expect(r.stderr).toContain("policies.api.capacity:");
    expect(r.stderr).toContain("policies.api.per: must be a positive integer with a unit");
    expect(r.stderr).toMatch(/policies\.x: Unrecognized key: "burst"/);
  });

  it("reports a missing file", async () => {
    const r = await runCli(["serve", "--config", join(dir, "missing.yaml")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("cannot read the file");
  });
});
