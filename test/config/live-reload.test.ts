// A real server started from a file reloads it live: a raised version applies (answers report the
// new limit), while a bad file, a changed listen address or a limit changed without a higher
// version is refused, keeps the old config serving and is counted.

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createChannel, createClient } from "nice-grpc";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfigFile } from "../../src/config/load.ts";
import { type RunningServer, startServer } from "../../src/server/tokenmesh-server.ts";
import { rateLimiterDefinition } from "../support/server.ts";

const base = (policy: string) =>
  `listen: "127.0.0.1:0"\nmetricsListen: null\nhttpListen: null\ndataDir: null\nlogLevel: silent\npolicies:\n${policy}`;

let server: RunningServer | undefined;
afterEach(async () => {
  await server?.shutdown();
  server = undefined;
});

async function reloadsCounted(s: RunningServer): Promise<string> {
  return (await s.metrics.registry.getSingleMetricAsString("tokenmesh_config_reloads_total"))
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .join("\n");
}

describe("live config reload", () => {
  it("applies a raised version, refuses bad files and keeps the old config serving", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tokenmesh-reload-"));
    const file = join(dir, "config.yaml");
    writeFileSync(file, base("  api: { capacity: 50, refill: 50, per: 1s }\n"));
    server = await startServer({ config: await loadConfigFile(file), log: pino({ level: "silent" }), configPath: file });
    const reloader = server.reloader;
    if (reloader === undefined) throw new Error("no reloader");
    const channel = createChannel(`127.0.0.1:${server.port}`);
    const client = createClient(rateLimiterDefinition, channel);
    const capacity = async (policy = "api") =>
      (await client.query({ decisions: [{ buckets: [{ policy, key: "k", cost: 1 }] }] })).results[0]?.buckets[0]?.capacity;
    expect(await reloadsCounted(server)).toMatch(/result="success"} 0[\s\S]*result="failure"} 0/);
    expect(await capacity()).toBe(50n);

    writeFileSync(file, base("  api: { capacity: 5, refill: 5, per: 1s }\n"));
    const sameVersion = await reloader.reload("test");
    expect(sameVersion).toMatchObject({ ok: false, error: [expect.stringContaining("policies.api.version")] });

    writeFileSync(file, base("  api: { capacity: 5, refill: [5], per: 1s }\n"));
    expect(await reloader.reload("test")).toMatchObject({ ok: false, error: [expect.stringContaining("policies.api.refill")] });

    writeFileSync(file, `${base("  api: { capacity: 5, refill: 5, per: 1s, version: 1 }\n")}`.replace("127.0.0.1:0", "127.0.0.1:1"));
    expect(await reloader.reload("test")).toMatchObject({ ok: false, error: [expect.stringContaining("listen: cannot change live")] });
    expect(await capacity()).toBe(50n); // every refused reload left the old config serving

    writeFileSync(file, base("  api: { capacity: 5, refill: 5, per: 1s, version: 1 }\n  added: { capacity: 3, refill: 1, per: 1s }\n"));
    expect(await reloader.reload("test")).toMatchObject({ ok: true });
    expect(await capacity()).toBe(5n);
    expect(await capacity("added")).toBe(3n);

    writeFileSync(file, base("  added: { capacity: 3, refill: 1, per: 1s }\n"));
    expect(await reloader.reload("test")).toMatchObject({ ok: true, value: ["-api"] });
    await expect(capacity()).rejects.toThrow(/api/);
    expect(await reloadsCounted(server)).toMatch(/result="success"} 2[\s\S]*result="failure"} 3/);
    channel.close();
  });

  it("a reload asked for during a run answers with a run that read the file after the ask", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "tokenmesh-reload-")), "tokenmesh.yaml");
    writeFileSync(file, base("  api: { capacity: 50, refill: 50, per: 1s }\n"));
    server = await startServer({ config: await loadConfigFile(file), log: pino({ level: "silent" }), configPath: file });
    const reloader = server.reloader;
    if (reloader === undefined) throw new Error("no reloader");
    writeFileSync(file, base("  api: { capacity: 5, refill: 5, per: 1s, version: 1 }\n"));
    const first = reloader.reload("test"); // reads version 1 (the read is asynchronous)
    writeFileSync(file, base("  api: { capacity: 7, refill: 7, per: 1s, version: 2 }\n"));
    const second = reloader.reload("test"); // asked while the first runs: must read version 2
    const third = reloader.reload("test"); // shares the queued run
    expect(second).not.toBe(first); // the run in flight may have read the file before the write
    expect(third).toBe(second);
    expect(await second).toMatchObject({ ok: true });
    expect(reloader.config.policies.get("api")?.rate.capacity).toBe(7);
    await first;
  });

  it("standalone: a removed policy's buckets are dropped, so re-adding it starts them full", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "tokenmesh-reload-")), "tokenmesh.yaml");
    writeFileSync(file, base("  api: { capacity: 5, refill: 1, per: 1h }\n  other: { capacity: 5, refill: 1, per: 1h }\n"));
    server = await startServer({ config: await loadConfigFile(file), log: pino({ level: "silent" }), configPath: file });
    const reloader = server.reloader;
    if (reloader === undefined) throw new Error("no reloader");
    const channel = createChannel(`127.0.0.1:${server.port}`);
    const client = createClient(rateLimiterDefinition, channel);
    const drain = (policy: string) => client.consume({ decisions: [{ buckets: [{ policy, key: "k", cost: 5 }] }] });
    const remaining = async (policy: string) =>
      (await client.query({ decisions: [{ buckets: [{ policy, key: "k" }] }] })).results[0]?.buckets[0]?.remaining;
    await drain("api");
    await drain("other");
    expect(await remaining("api")).toBe(0n);
    writeFileSync(file, base("  other: { capacity: 5, refill: 1, per: 1h }\n"));
    expect(await reloader.reload("test")).toMatchObject({ ok: true, value: ["-api"] });
    writeFileSync(file, base("  api: { capacity: 5, refill: 1, per: 1h }\n  other: { capacity: 5, refill: 1, per: 1h }\n"));
    expect(await reloader.reload("test")).toMatchObject({ ok: true, value: ["+api"] });
    expect(await remaining("api")).toBe(5n); // dropped at removal: not the drained bucket back
    expect(await remaining("other")).toBe(0n); // the policy that stayed kept its bucket
    channel.close();
  });
});
