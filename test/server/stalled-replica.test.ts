// A replica process stopped (SIGSTOP) while calls arrive, then resumed after every caller gave
// up: the calls it finds in its sockets are answered without taking a token, because their
// deadlines (moved back by how long the loop was behind) have passed, they were cancelled, or
// the backlog is shed. Before, a resumed replica admitted 69-78 such calls.

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createChannel, createClient } from "nice-grpc";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { freePort, type Spawned, spawnCli } from "../support/process.ts";
import { rawRequest, rawUnary } from "../support/raw-grpc.ts";
import { rateLimiterDefinition } from "../support/server.ts";

const CALLS = 100;
const bucket = { policy: "quota", key: "stalled" };

describe("a replica stopped while calls arrive", () => {
  let server: Spawned | undefined;
  afterAll(async () => {
    if (server?.child.exitCode === null) server.child.kill("SIGKILL");
    await server?.exited(5_000);
  });

  it("takes no tokens for the calls whose callers gave up while it was stopped", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tokenmesh-stall-"));
    const address = `127.0.0.1:${await freePort()}`;
    const metricsPort = await freePort();
    const config = join(dir, "config.yaml");
    writeFileSync(
      config,
      stringify({
        listen: address,
        metricsListen: `127.0.0.1:${metricsPort}`,
        httpListen: null,
        policies: { quota: { capacity: 1000, refill: 1, per: "1h" } },
      }),
    );
    server = spawnCli(["serve", "--config", config]);
    await server.waitFor("tokenmesh serving", 60_000);
    const channel = createChannel(address);
    const client = createClient(rateLimiterDefinition, channel);
    try {
      const warm = await client.consume({ decisions: [{ buckets: [bucket] }] });
      expect(warm.results[0]?.allowed).toBe(true);
      server.child.kill("SIGSTOP");
      const sent = Date.now();
      // As a client with a 1 s deadline: grpc-timeout sent, and cancelled when it passes.
      const outcomes = await Promise.all(
        Array.from({ length: CALLS }, () =>
          rawUnary(address, "/tokenmesh.v1.RateLimiter/Consume", rawRequest([bucket]), { "grpc-timeout": "1S" }, 1_000).then(
            (r) => `${r.code} ${r.message}`,
          ),
        ),
      );
      // Every caller gave up (DEADLINE_EXCEEDED, 4) while the process was stopped.
      expect(new Set(outcomes)).toEqual(new Set(["4 cancelled by the client"]));
      await new Promise((r) => setTimeout(r, Math.max(0, sent + 2_500 - Date.now())));
      server.child.kill("SIGCONT");
      // The backlog (100 connections) is read over several turns: wait until the counts settle.
      let text = "";
      for (let last = "", since = Date.now(); Date.now() - since < 500; ) {
        text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        const counts = text
          .split("\n")
          .filter((l) => /^tokenmesh_(expired_calls_total|shed_calls_total|decisions_total)/.test(l))
          .join();
        if (counts !== last) {
          last = counts;
          since = Date.now();
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      // Right after the stall the backlog may be shed: ask until the replica answers.
      let after: Awaited<ReturnType<typeof client.query>> | undefined;
      for (let i = 0; i < 100 && after === undefined; i++) {
        after = await client.query({ decisions: [{ buckets: [bucket] }] }).catch(async () => {
          await new Promise((r) => setTimeout(r, 50));
          return undefined;
        });
      }
      const read = (pattern: RegExp): number => Number(pattern.exec(text)?.[1] ?? 0);
      const expired = read(/tokenmesh_expired_calls_total\{reason="deadline"\} (\d+)/);
      const cancelled = read(/tokenmesh_expired_calls_total\{reason="cancelled"\} (\d+)/);
      const shed = read(/tokenmesh_shed_calls_total (\d+)/);
      const allowed = read(/tokenmesh_decisions_total\{policy="quota",result="allowed"\} (\d+)/);
      console.log(
        `after SIGCONT: remaining ${after?.results[0]?.buckets[0]?.remaining}; expired ${expired}, cancelled ${cancelled}, shed ${shed}, allowed ${allowed}`,
      );
      expect(after?.results[0]?.buckets[0]?.remaining).toBe(999n);
      expect(allowed).toBe(1);
    } finally {
      channel.close();
    }
  }, 120_000);
});
