// A standalone replica's snapshot does not keep buckets that a reload dropped with their policy:
// restarted on the same data directory with the policy added back, its bucket starts full, while
// a policy that stayed keeps its drained bucket. Real servers, one after the other, on one
// directory; writes happen at shutdown (the interval is an hour), so each step is one file.

import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createChannel, createClient } from "nice-grpc";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { loadConfigFile } from "../../src/config/load.ts";
import { type RunningServer, startServer } from "../../src/server/tokenmesh-server.ts";
import { rateLimiterDefinition } from "../support/server.ts";

const API = "  api: { capacity: 5, refill: 1, per: 1h }\n";
const OTHER = "  other: { capacity: 5, refill: 1, per: 1h }\n";

let running: { server: RunningServer; close: () => Promise<void> } | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
  vi.unstubAllEnvs();
});

async function start(file: string) {
  const server = await startServer({ config: await loadConfigFile(file), log: pino({ level: "silent" }), configPath: file });
  server.reloader?.close(); // reloads are the test's own
  const channel = createChannel(`127.0.0.1:${server.port}`);
  const client = createClient(rateLimiterDefinition, channel);
  let closed = false;
  running = {
    server,
    close: async () => {
      if (closed) return;
      closed = true;
      channel.close();
      await server.shutdown(); // writes the last snapshot
    },
  };
  const remaining = async (policy: string, key = "k") =>
    (await client.query({ decisions: [{ buckets: [{ policy, key }] }] })).results[0]?.buckets[0]?.remaining;
  const drain = async (policy: string, key = "k") =>
    expect((await client.consume({ decisions: [{ buckets: [{ policy, key, cost: 5 }] }] })).results[0]?.allowed).toBe(true);
  return { server, remaining, drain, close: running.close };
}

describe("standalone snapshot after a reload drops a policy", () => {
  it("does not bring the dropped buckets back at restart: a re-added policy starts full", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tokenmesh-dropped-"));
    const dataDir = join(dir, "data");
    const file = join(dir, "tokenmesh.yaml");
    // The test environment turns persistence off (TOKENMESH_DATA_DIR=off, vitest.config.ts);
    // set for this test, it reaches the start-up load and every reload alike.
    vi.stubEnv("TOKENMESH_DATA_DIR", dataDir);
    const config = (policies: string) =>
      writeFileSync(
        file,
        `listen: "127.0.0.1:0"\nmetricsListen: null\nhttpListen: null\nlogLevel: silent\nsnapshotInterval: 1h\npolicies:\n${policies}`,
      );

    // 1. Both drained, written as the base at shutdown.
    config(API + OTHER);
    const first = await start(file);
    await first.drain("api");
    await first.drain("other");
    await first.close();

    // 2. Restarted: both still drained. A reload drops api; a new bucket of other changes, so
    //    the shutdown write has something to add (an increment would hold only that).
    const second = await start(file);
    expect(await second.remaining("api")).toBe(0n);
    config(OTHER);
    expect(await second.server.reloader?.reload("test")).toMatchObject({ ok: true, value: ["-api"] });
    await second.drain("other", "k2");
    await second.close();
    // The write after the drop was a base: no increment holds on to the old series.
    expect(readdirSync(dataDir).filter((n) => n.startsWith("increment-"))).toEqual([]);

    // 3. Restarted with api back: its bucket starts full; other's buckets kept their levels.
    config(API + OTHER);
    const third = await start(file);
    expect(await third.remaining("api")).toBe(5n);
    expect(await third.remaining("other")).toBe(0n);
    expect(await third.remaining("other", "k2")).toBe(0n);
  });
});
