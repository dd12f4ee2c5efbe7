// How long the shipped build takes to be useful: a standalone replica from `node` to its
// "tokenmesh serving" line (targets: under 0.5 s), and one `tokenmesh consume` against a running
// replica from spawn to exit (under 0.3 s, so the README's five-call loop sees its denial before a
// token comes back). Both are wall-clock times of whole processes, so they move with the machine:
// `node -e 0` is timed in the same rounds, interleaved, and each figure is given as a ratio to it.
//
// Runs the build first (npm run build) and checks that bin/tokenmesh.mjs picked it: a stale
// build would silently time the TypeScript sources through tsx instead.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Row } from "../lib/report.ts";
import type { Scenario, ScenarioContext } from "../lib/scenario.ts";
import { median, spread } from "../lib/stats.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const CLI = join(REPO, "bin/tokenmesh.mjs");
const SAMPLES_PER_ROUND = 3;
const TIMEOUT_MS = 20_000;

interface Timed {
  readonly ms: number;
  readonly code: number | null;
  readonly stderr: string;
}

function track(child: ChildProcess): () => void {
  const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
  return () => clearTimeout(timer);
}

/** Wall time from spawn to exit. */
function timeToExit(args: readonly string[]): Promise<Timed> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
    const untrack = track(child);
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.once("exit", (code) => {
      untrack();
      resolve({ ms: performance.now() - started, code, stderr });
    });
  });
}

/** Wall time from spawn to the line that says the replica serves; the replica is then stopped. */
function timeToServing(config: string): Promise<Timed & { address: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [CLI, "serve", "--config", config], { stdio: ["ignore", "pipe", "pipe"] });
    const untrack = track(child);
    let out = "";
    let stderr = "";
    let result: (Timed & { address: string }) | undefined;
    child.stdout?.on("data", (d: Buffer) => {
      if (result !== undefined) return;
      out += d.toString();
      const at = out.split("\n").find((l) => l.includes("tokenmesh serving"));
      if (at === undefined) return;
      const ms = performance.now() - started;
      result = { ms, code: 0, stderr, address: (JSON.parse(at) as { address: string }).address };
      child.kill("SIGTERM");
    });
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.once("exit", (code) => {
      untrack();
      if (result !== undefined) resolve(result);
      else reject(new Error(`tokenmesh serve exited (${code}) before serving: ${stderr}`));
    });
  });
}

/** A running replica for the consume timings, stopped by the returned function. */
async function startReplica(config: string): Promise<{ address: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [CLI, "serve", "--config", config], { stdio: ["ignore", "pipe", "inherit"] });
  const address = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("replica not serving after 20 s")), TIMEOUT_MS);
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const at = out.split("\n").find((l) => l.includes("tokenmesh serving"));
      if (at === undefined) return;
      clearTimeout(timer);
      child.stdout?.resume();
      resolve((JSON.parse(at) as { address: string }).address);
    });
    child.once("exit", (code) => reject(new Error(`replica exited (${code}) before serving`)));
  });
  return {
    address,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

function buildFirst(ctx: ScenarioContext): void {
  const built = spawnSync(process.execPath, [join(REPO, "scripts/build.mjs")], { encoding: "utf8" });
  if (built.status !== 0) throw new Error(`npm run build failed: ${built.stderr}`);
  ctx.log(`start-up: ${built.stdout.trim()}`);
}

function row(name: string, values: number[], perRound: number[], baseline: number, bound: number, note: string): Row {
  const value = median(values);
  return {
    name,
    value,
    unit: "ms",
    baseline,
    baselineName: "node -e 0",
    ratio: value / baseline,
    target: `<= ${bound} ms`,
    pass: Number.isFinite(value) ? value <= bound : null,
    note: `${note}; median of ${values.length} runs over ${perRound.length} rounds, spread of round medians ${(spread(perRound) * 100).toFixed(0)}%`,
  };
}

export const startUp: Scenario = {
  id: "start-up",
  phase: 3,
  async run(ctx) {
    buildFirst(ctx);
    const dir = mkdtempSync(join(tmpdir(), "tokenmesh-start-up-"));
    const config = join(dir, "standalone.yaml");
    // The replica as a user starts it: a standalone config, metrics and the HTTP door on, info logging.
    writeFileSync(
      config,
      "listen: 127.0.0.1:0\nmetricsListen: 127.0.0.1:0\nhttpListen: 127.0.0.1:0\npolicies:\n  bench: { capacity: 1000000000, refill: 1, per: 1s }\n",
    );
    const nodeMs: number[][] = [];
    const serveMs: number[][] = [];
    const consumeMs: number[][] = [];
    const replica = await startReplica(config);
    try {
      const consume = [CLI, "consume", "--address", replica.address, "--policy", "bench", "--key", "start-up"];
      const probe = await timeToExit(consume);
      if (probe.code !== 0) throw new Error(`consume exited ${probe.code}: ${probe.stderr}`);
      if (probe.stderr.includes("running the sources")) throw new Error("bin/tokenmesh.mjs ran the sources, not the build");
      for (let round = 0; round < ctx.settings.rounds; round++) {
        const n: number[] = [];
        const s: number[] = [];
        const c: number[] = [];
        // Interleaved, so drift in the machine's load hits the baseline and the figures alike.
        for (let i = 0; i < SAMPLES_PER_ROUND; i++) {
          n.push((await timeToExit(["-e", "0"])).ms);
          s.push((await timeToServing(config)).ms);
          const call = await timeToExit(consume);
          if (call.code !== 0) throw new Error(`consume exited ${call.code}: ${call.stderr}`);
          c.push(call.ms);
        }
        nodeMs.push(n);
        serveMs.push(s);
        consumeMs.push(c);
        ctx.log(
          `start-up round ${round + 1}: node -e 0 ${median(n).toFixed(0)} ms, serving ${median(s).toFixed(0)} ms, consume ${median(c).toFixed(0)} ms`,
        );
      }
    } finally {
      await replica.stop();
    }
    const baseline = median(nodeMs.flat());
    return [
      row(
        "start-up to serving, standalone replica (build)",
        serveMs.flat(),
        serveMs.map(median),
        baseline,
        500,
        "`node bin/tokenmesh.mjs serve` from spawn to its `tokenmesh serving` log line (client, metrics and HTTP ports bound)",
      ),
      row(
        "CLI `consume`, one call end to end (build)",
        consumeMs.flat(),
        consumeMs.map(median),
        baseline,
        300,
        "`node bin/tokenmesh.mjs consume` from spawn to exit, against a running standalone replica on loopback",
      ),
    ];
  },
};
