// Measures the TypeScript client against one tokenmesh replica running in its own process:
//
//   1. burst: 10,000 concurrent single-decision consume() calls, and how many Consume RPCs they
//      became (counted by the client and by the server's own request histogram);
//   2. sustained: decisions per second with N concurrent callers in a closed loop for D seconds,
//      batched (the default) and, as the baseline in the same run, unbatched (batch: false).
//
// Run: npx tsx clients/typescript/bench/client-throughput.ts [--callers 2000] [--seconds 5]

import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { createLimiter, type LimiterOptions } from "../src/index.ts";

const { values } = parseArgs({ options: { callers: { type: "string", default: "2000" }, seconds: { type: "string", default: "5" } } });
const callers = Number(values.callers);
const seconds = Number(values.seconds);
const repoRoot = resolve(import.meta.dirname, "../../..");

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const address = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  return typeof address === "object" && address !== null ? address.port : 0;
}

async function serverRpcs(metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("tokenmesh_request_duration_seconds_count") && line.includes("RateLimiter/Consume")) {
      total += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return total;
}

async function sustained(address: string, options: Partial<LimiterOptions>): Promise<{ perSecond: number; rpcs: number }> {
  const limiter = createLimiter({ address, deadlineMs: 5000, ...options });
  const until = performance.now() + seconds * 1000;
  let decisions = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async (_, c) => {
      for (let i = 0; performance.now() < until; i++) {
        await limiter.consume({ policy: "bench", key: `caller-${c}-${i % 64}` });
        decisions++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const { rpcs } = limiter.stats();
  await limiter.close();
  return { perSecond: decisions / elapsed, rpcs };
}

async function main(): Promise<void> {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const dir = await mkdtemp(join(tmpdir(), "tokenmesh-bench-"));
  const config = join(dir, "config.yaml");
  await writeFile(
    config,
    `listen: 127.0.0.1:${port}\nmetricsListen: 127.0.0.1:${metricsPort}\nhttpListen: null\nlogLevel: warn\npolicies:\n  bench:\n    capacity: 1000000000\n    refill: 1000000000\n    per: 1s\n`,
  );
  const child = spawn(process.execPath, [join(repoRoot, "bin/tokenmesh.mjs"), "serve", "--config", config], { stdio: "inherit" });
  const address = `127.0.0.1:${port}`;
  try {
    const probe = createLimiter({ address, deadlineMs: 500, failMode: "closed", logger: { warn() {}, info() {} } });
    for (let i = 0; i < 100 && (await probe.consume({ policy: "bench", key: "probe" })).source !== "server"; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    await probe.close();

    const limiter = createLimiter({ address, deadlineMs: 5000 });
    const before = await serverRpcs(metricsPort);
    const started = performance.now();
    const burst = await Promise.all(Array.from({ length: 10_000 }, (_, i) => limiter.consume({ policy: "bench", key: `burst-${i}` })));
    const burstMs = performance.now() - started;
    const atServer = (await serverRpcs(metricsPort)) - before;
    const clientRpcs = limiter.stats().rpcs;
    await limiter.close();
    const allowed = burst.filter((d) => d.allowed && d.source === "server").length;
    console.log(
      `burst: 10,000 concurrent consume() calls -> ${clientRpcs} RPCs sent by the client, ${atServer} Consume RPCs seen by the server, ${allowed} allowed, ${burstMs.toFixed(0)} ms`,
    );

    const batched = await sustained(address, {});
    const unbatched = await sustained(address, { batch: false });
    console.log(`sustained (${callers} concurrent callers, ${seconds} s each, one replica):`);
    console.log(
      `  batched:   ${Math.round(batched.perSecond)} decisions/s in ${batched.rpcs} RPCs (${((batched.perSecond * seconds) / batched.rpcs).toFixed(0)} decisions per RPC)`,
    );
    console.log(`  unbatched: ${Math.round(unbatched.perSecond)} decisions/s in ${unbatched.rpcs} RPCs (baseline)`);
    console.log(`  ratio batched/unbatched: ${(batched.perSecond / unbatched.perSecond).toFixed(1)}x`);
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
