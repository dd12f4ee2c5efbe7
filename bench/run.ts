// `npm run bench [-- --quick]`: measures tokenmesh and its baselines in the same run and prints
// a table (stdout) and a JSON array of rows (bench/results/latest.json). Progress goes to stderr.
//
// Phases: 1 = the shared alternating rounds (throughput, CPU, latency, batch), 2 = loads sized
// from phase 1 (half of tokenmesh's max), 3 = scenarios that run themselves (1M keys).

import { spawnSync } from "node:child_process";
import { loadavg } from "node:os";
import { templateMatchesEncoder } from "./lib/bodies.ts";
import type { Measurement } from "./lib/load.ts";
import { parseOptions } from "./lib/options.ts";
import { formatTable, type Row, writeJson } from "./lib/report.ts";
import { runRounds } from "./lib/rounds.ts";
import type { ScenarioContext } from "./lib/scenario.ts";
import { BENCH_POLICY } from "./lib/targets.ts";
import { detectTools } from "./lib/tools.ts";
import { scenarios } from "./scenarios/index.ts";

const t0 = performance.now();
const startLoad = loadavg()
  .map((x) => x.toFixed(2))
  .join(" ");
const log = (message: string): void => {
  process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${message}\n`);
};

/** Which code was measured: the commit, and whether the server's sources differed from it. */
function revision(): string {
  const git = (args: string[]): { status: number | null; out: string } => {
    const r = spawnSync("git", args, { encoding: "utf8" });
    return { status: r.status, out: r.stdout.trim() };
  };
  const head = git(["rev-parse", "--short", "HEAD"]);
  if (head.status !== 0) return "not a git checkout";
  // Plumbing only: it reads the index and never writes it (others may be committing).
  const dirty = git(["diff-index", "--quiet", "HEAD", "--", "src", "bin", "proto"]).status !== 0;
  return `commit ${head.out}${dirty ? " with uncommitted changes in src/" : ""}`;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (!templateMatchesEncoder(BENCH_POLICY.name)) throw new Error("body template differs from protobuf-es encoding");
  const tools = detectTools({ install: options.install, forceNodeDriver: options.forceNodeDriver });
  for (const note of tools.notes) log(note);
  const wanted = new Set(options.only);
  for (const s of scenarios) if (wanted.has(s.id)) for (const n of s.needs ?? []) wanted.add(n);
  // --quick stays near 3 minutes (the user-level rows ~90 s of it): the replication rows (~80 s) run in a
  // quick pass only when asked for with --only replication.
  // The scaling rows (up to 9 replicas per fleet, ~2 minutes quick) likewise: `--quick --only scaling`.
  const skippedInQuick = wanted.size === 0 && options.settings.quick ? ["replication", "scaling"] : [];
  const chosen = scenarios.filter((s) => (wanted.size === 0 ? !skippedInQuick.includes(s.id) : wanted.has(s.id)));
  if (skippedInQuick.length > 0)
    log("--quick leaves out the replication and scaling rows: run them with `npm run bench -- --quick --only replication,scaling`");
  const results = new Map<string, Measurement[]>();
  const ctx: ScenarioContext = { tools, settings: options.settings, results, log };
  const ran = new Map<string, readonly Row[]>();

  for (const phase of [1, 2, 3] as const) {
    const inPhase = chosen.filter((s) => s.phase === phase);
    const needs = inPhase.flatMap((s) => s.loads?.(ctx) ?? []);
    if (needs.length > 0) {
      log(`phase ${phase}: ${new Set(needs.map((n) => n.id)).size} loads x ${options.settings.rounds} rounds`);
      const got = await runRounds(tools, needs, { rounds: options.settings.rounds, cpuProfDir: options.settings.cpuProfDir, log });
      for (const [id, ms] of got) results.set(id, ms);
    }
    for (const s of inPhase) {
      if (s.run === undefined) continue;
      log(`scenario ${s.id}`);
      try {
        ran.set(s.id, await s.run(ctx));
      } catch (err) {
        log(`scenario ${s.id} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      }
    }
  }
  const rows = chosen.flatMap((s) => ran.get(s.id) ?? s.rows?.(ctx) ?? []);
  const mode = options.settings.quick ? "quick" : "full";
  // Other work on a shared machine moves every figure: show how busy it was.
  const load = `load average at start ${startLoad}, at end ${loadavg()
    .map((x) => x.toFixed(2))
    .join(" ")}; ${revision()}`;
  process.stdout.write(
    `\ntokenmesh bench (${mode}, ${options.settings.rounds} rounds, ${new Date().toISOString()})\n${[...tools.notes, load].map((n) => `- ${n}`).join("\n")}\n\n`,
  );
  process.stdout.write(formatTable(rows));
  writeJson(options.out, rows);
  log(`wrote ${options.out}; ${((performance.now() - t0) / 1000).toFixed(0)} s in all`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
