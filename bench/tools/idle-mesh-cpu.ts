// Idle cost of the `npm start` mesh, measured from outside: runs `tokenmesh local-mesh` on the
// three config/local-mesh/ files (copied with free ports and a fresh data directory, so it can
// run beside a real `npm start` and needs no port lock), waits until the three replicas serve,
// leaves them alone for a warm-up, then reads each replica's user + system CPU time
// (/proc/PID/stat) and its threads' voluntary context switches (/proc/PID/task/*/status: about
// one per wake-up of a sleeping thread) over the window. Prints one line per run and a summary.
//
//   npx tsx bench/tools/idle-mesh-cpu.ts [--runs 3] [--window-s 60] [--warmup-s 5] [--no-snapshots] [--no-relay]
//
// `--no-snapshots` runs the same mesh with `dataDir: null`: what the snapshot timer costs is the
// difference (docs/performance.md, "Idle cost", has the budget measured this way); `--no-relay`
// adds `relay: false` to each mesh section (a replica then forwards nothing it received).
//
// No load at all is sent: this is the figure of issue 14 ("an idle replica uses at most 1% of a
// core"). Run it under the heavy lock when other work shares the machine.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { cpuSeconds } from "../lib/processes.ts";
import { freePort } from "../lib/targets.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const CONFIGS = ["replica-1", "replica-2", "replica-3"];

/** Voluntary context switches of every thread of `pid`. */
function wakeups(pid: number): number {
  let n = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const m = /^voluntary_ctxt_switches:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8"));
      n += Number(m?.[1] ?? 0);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return n;
}

/** The local-mesh configs with every fixed port replaced by a free one, in a fresh directory. */
async function configs(dir: string, snapshots: boolean, relay: boolean): Promise<string[]> {
  const texts = CONFIGS.map((c) => readFileSync(join(REPO, "config/local-mesh", `${c}.yaml`), "utf8"));
  const ports = new Map<string, string>();
  for (const t of texts) for (const m of t.matchAll(/127\.0\.0\.1:(\d+)/g)) ports.set(m[1] as string, "");
  for (const p of ports.keys()) ports.set(p, String(await freePort()));
  return texts.map((t, i) => {
    const file = join(dir, `${CONFIGS[i]}.yaml`);
    const text = t
      .replace(/127\.0\.0\.1:(\d+)/g, (_all, p: string) => `127.0.0.1:${ports.get(p)}`)
      .replace(/^ {2}flushInterval: (.*)$/m, (line) => (relay ? line : `${line}\n  relay: false`))
      .replace(/^dataDir: .*$/m, `dataDir: ${snapshots ? JSON.stringify(join(dir, "data", CONFIGS[i] as string)) : "null"}`);
    writeFileSync(file, text);
    return file;
  });
}

/** Starts the mesh; resolves with the replicas' pids once all three log "tokenmesh serving". */
async function startMesh(files: readonly string[]): Promise<{ proc: ChildProcess; pids: number[] }> {
  const proc = spawn(process.execPath, [join(REPO, "bin/tokenmesh.mjs"), "local-mesh", ...files], { stdio: ["ignore", "pipe", "inherit"] });
  const serving = new Set<string>();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not serving after 30 s (${[...serving].join(", ")} were)`)), 30_000);
    let buffered = "";
    proc.stdout?.on("data", (d: Buffer) => {
      buffered += d.toString();
      for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const name = /^\[(replica-\d)\] .*tokenmesh serving/.exec(line)?.[1];
        if (name !== undefined) serving.add(name);
        if (serving.size === CONFIGS.length) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
    proc.once("exit", (code) => reject(new Error(`local-mesh exited with ${code}`)));
  });
  const children = readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, "utf8").trim().split(/\s+/).map(Number);
  return { proc, pids: children };
}

async function oneRun(windowS: number, warmupS: number, snapshots: boolean, relay: boolean): Promise<{ cpu: number[]; wakeups: number[] }> {
  const dir = mkdtempSync(join(tmpdir(), "tokenmesh-idle-"));
  const { proc, pids } = await startMesh(await configs(dir, snapshots, relay));
  try {
    await sleep(warmupS * 1000);
    const cpu0 = pids.map(cpuSeconds);
    const w0 = pids.map(wakeups);
    const t0 = performance.now();
    await sleep(windowS * 1000);
    const s = (performance.now() - t0) / 1000;
    return {
      cpu: pids.map((pid, i) => ((cpuSeconds(pid) - (cpu0[i] as number)) / s) * 100),
      wakeups: pids.map((pid, i) => (wakeups(pid) - (w0[i] as number)) / s),
    };
  } finally {
    const exited = new Promise((resolve) => proc.once("exit", resolve));
    proc.kill("SIGTERM");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    "window-s": { type: "string", default: "60" },
    "warmup-s": { type: "string", default: "5" },
    "no-snapshots": { type: "boolean", default: false },
    "no-relay": { type: "boolean", default: false },
  },
});
const runs = Number(values.runs);
const windowS = Number(values["window-s"]);
const warmupS = Number(values["warmup-s"]);
const busiest: number[] = [];
for (let run = 1; run <= runs; run++) {
  const r = await oneRun(windowS, warmupS, !values["no-snapshots"], !values["no-relay"]);
  busiest.push(Math.max(...r.cpu));
  console.log(
    `run ${run}: CPU % of a core per replica ${r.cpu.map((x) => x.toFixed(2)).join(" / ")}; voluntary context switches/s ${r.wakeups.map((x) => x.toFixed(0)).join(" / ")} (${windowS} s window after ${warmupS} s)`,
  );
}
busiest.sort((a, b) => a - b);
console.log(
  `busiest replica per run: ${busiest.map((x) => x.toFixed(2)).join(", ")}; median ${busiest[Math.floor(busiest.length / 2)]?.toFixed(2)}% of a core`,
);
