// The process log as an operator reads it, captured from real `tokenmesh serve` processes: every
// line names the replica, has an ISO time and a level name; `debug` shows refused requests (field
// and reason) and peer link changes; losing a peer is a warning; the audit log can share stdout.

import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { createChannel, createClient } from "nice-grpc";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { startProcessMesh } from "../support/mesh-processes.ts";
import { freePort, type Spawned, spawnCli } from "../support/process.ts";
import { rateLimiterDefinition } from "../support/server.ts";
import { expectEveryLineNames, parseLines } from "./log-lines.ts";

const dir = mkdtempSync(join(tmpdir(), "tokenmesh-logs-"));
const started: Spawned[] = [];

async function serve(name: string, config: Record<string, unknown>): Promise<{ process: Spawned; address: string }> {
  const address = `127.0.0.1:${await freePort()}`;
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, stringify({ listen: address, metricsListen: null, httpListen: null, ...config }));
  const process = spawnCli(["serve", "--config", path]);
  started.push(process);
  await process.waitFor("tokenmesh serving");
  return { process, address };
}

async function stop(p: Spawned): Promise<void> {
  p.child.kill("SIGTERM");
  expect(await p.exited()).toBe(0);
}

afterAll(() => {
  for (const p of started) if (p.child.exitCode === null) p.child.kill("SIGKILL");
});

describe("a standalone replica's log", () => {
  it("names the configured node on every line, logs refused requests at debug, and carries audit lines", async () => {
    const { process, address } = await serve("edge", {
      node: "edge-7",
      logLevel: "debug",
      audit: { destination: "stdout", sample: { allowed: 1, denied: 1 } },
      policies: { login: { capacity: 1, refill: 1, per: "1h" } },
    });
    const channel = createChannel(address);
    const client = createClient(rateLimiterDefinition, channel);
    const one = { decisions: [{ buckets: [{ policy: "login", key: "alice" }] }] };
    expect((await client.consume(one)).results[0]?.allowed).toBe(true);
    expect((await client.consume(one)).results[0]?.allowed).toBe(false);
    await expect(client.consume({ decisions: [{ buckets: [{ policy: "nope", key: "alice" }] }] })).rejects.toThrow(/unknown policy/);
    await process.waitFor("request refused");
    channel.close();
    await stop(process);

    const lines = parseLines(process.stdout());
    expectEveryLineNames(lines, "edge-7");
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(["tokenmesh serving", "tokenmesh stopped"]));
    expect(lines.find((l) => l.msg === "request refused")).toMatchObject({
      level: "debug",
      method: "/tokenmesh.v1.RateLimiter/Consume",
      code: "INVALID_ARGUMENT",
      field: "decisions[0].buckets[0].policy",
      reason: expect.stringContaining('unknown policy "nope"'),
    });
    const hash = createHash("sha256").update("alice").digest("hex").slice(0, 16);
    const audit = lines.filter((l) => l.log === "audit");
    expect(audit.map((l) => ({ policy: l.policy, keyHash: l.keyHash, cost: l.cost, outcome: l.outcome }))).toEqual([
      { policy: "login", keyHash: hash, cost: 1, outcome: "allowed" },
      { policy: "login", keyHash: hash, cost: 1, outcome: "denied" },
    ]);
    // The refused request decided nothing, so it has no audit line; keys are never written in clear.
    expect(process.stdout()).not.toContain('"alice"');
  });

  it("uses the host name when no node name is configured, and logs no debug lines at info", async () => {
    const { process } = await serve("plain", { logLevel: "info", policies: { api: { capacity: 5, refill: 5, per: "1s" } } });
    await stop(process);
    const lines = parseLines(process.stdout());
    expectEveryLineNames(lines, hostname());
    expect(lines.filter((l) => l.level === "debug")).toEqual([]);
  });
});

describe("a mesh replica's log", () => {
  it("logs peer links at debug and a lost peer as a warning, with its node name on every line", async () => {
    const mesh = await startProcessMesh({
      size: 2,
      policies: { api: { capacity: 5, refill: 5, per: "1s" } },
      config: { logLevel: "debug" },
    });
    try {
      await mesh.fullyConnected();
      const [p1] = mesh.replicas;
      if (p1 === undefined) throw new Error("no replica");
      await mesh.kill(1);
      await p1.process.waitFor('"peer lost"');
      await p1.process.waitFor('"peer redial scheduled"');
      p1.process.child.kill("SIGTERM");
      expect(await p1.process.exited()).toBe(0);
      const lines = parseLines(p1.process.stdout());
      expectEveryLineNames(lines, "p1");
      expect(lines.find((l) => l.msg === "peer connected")).toMatchObject({ level: "info", peer: "p2" });
      expect(lines.find((l) => l.msg === "peer lost")).toMatchObject({ level: "warn", peer: "p2", address: expect.any(String) });
      expect(lines.find((l) => l.msg === "dialing peer")).toMatchObject({ level: "debug", address: expect.any(String) });
      expect(lines.find((l) => l.msg === "peer redial scheduled")).toMatchObject({ level: "debug", delayMs: expect.any(Number) });
      // Its own shutdown is not a lost peer.
      expect(lines.filter((l) => l.msg === "peer lost")).toHaveLength(1);
    } finally {
      await mesh.close();
    }
  });
});
