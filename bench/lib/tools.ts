// Finds the external programs the bench uses, installing the Debian packages when it can
// (running as root with apt-get), and decides which cores the servers and the load get.

import { execFileSync, spawnSync } from "node:child_process";
import { availableParallelism } from "node:os";

export interface Tools {
  readonly h2load: string | null;
  readonly redisServer: string | null;
  /** HTTP/1.1 load for the user-level scenario (Debian `wrk`). */
  readonly wrk: string | null;
  readonly taskset: string | null;
  /** Cores for the service under test (its redis-server included) and for the load generator. */
  readonly serverCpus: string | undefined;
  readonly loadCpus: string | undefined;
  /** What was detected or installed, for the report's header. */
  readonly notes: readonly string[];
}

function which(name: string): string | null {
  const r = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  const path = r.stdout.trim();
  return r.status === 0 && path !== "" ? path : null;
}

function tryAptInstall(pkg: string, notes: string[]): void {
  if (process.getuid?.() !== 0 || which("apt-get") === null) {
    notes.push(`${pkg}: not installed and not root, so not installing it`);
    return;
  }
  try {
    // Quiet and bounded: an install that hangs must not hang the bench.
    execFileSync("apt-get", ["install", "-y", "-q", pkg], {
      stdio: "ignore",
      timeout: 300_000,
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
    notes.push(`${pkg}: installed with apt-get`);
  } catch {
    notes.push(`${pkg}: apt-get install failed (try 'apt-get update' first)`);
  }
}

function findOrInstall(binary: string, pkg: string, notes: string[], install: boolean): string | null {
  let path = which(binary);
  if (path === null && install) {
    tryAptInstall(pkg, notes);
    path = which(binary);
  }
  return path;
}

export function detectTools(options: { install: boolean; forceNodeDriver: boolean }): Tools {
  const notes: string[] = [];
  const h2load = options.forceNodeDriver ? null : findOrInstall("h2load", "nghttp2-client", notes, options.install);
  const redisServer = findOrInstall("redis-server", "redis-server", notes, options.install);
  const wrk = findOrInstall("wrk", "wrk", notes, options.install);
  const taskset = which("taskset");
  const cores = availableParallelism();
  const pin = taskset !== null && cores >= 2;
  notes.push(`load: ${h2load !== null ? `h2load (${h2load}) for fixed-body runs, ` : ""}Node http2 driver for key spaces`);
  if (redisServer === null) notes.push("redis-server missing: the redis rows are not measured");
  if (wrk === null) notes.push("wrk missing: the user-level rows are not measured");
  notes.push(
    pin
      ? `cores: ${cores}; service on CPU 0, load on CPU 1 (taskset)`
      : `cores: ${cores}; no pinning (${taskset === null ? "no taskset" : "one core"})`,
  );
  return {
    h2load,
    redisServer,
    wrk,
    taskset,
    serverCpus: pin ? "0" : undefined,
    loadCpus: pin ? `1-${cores - 1}` : undefined,
    notes,
  };
}
