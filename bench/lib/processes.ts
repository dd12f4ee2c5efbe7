// Child processes of the bench: started pinned to a core where `taskset` exists, read for a
// ready line, measured through /proc (CPU time, RSS) and stopped by their own pid.

import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import type { Tools } from "./tools.ts";

/** Children still running: killed when the bench exits, however it exits. */
const live = new Set<ChildProcess>();
let reaperInstalled = false;

function track(proc: ChildProcess): void {
  live.add(proc);
  proc.once("exit", () => live.delete(proc));
  if (reaperInstalled) return;
  reaperInstalled = true;
  // A crashed bench must not leave servers holding a core: the next run would measure them.
  process.once("exit", () => {
    for (const p of live) p.kill("SIGKILL");
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      for (const p of live) p.kill("SIGKILL");
      process.exit(130);
    });
  }
}

export interface Child {
  readonly pid: number;
  readonly name: string;
  /** Resolves with the child's exit code once it has exited. */
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

export interface SpawnOptions<T> {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** CPU list for taskset, e.g. "0"; ignored when taskset is missing. */
  readonly cpus?: string;
  readonly cwd?: string;
  /** Resolves `started` with the first stdout line for which this returns a value. */
  readonly ready: (line: string) => T | undefined;
  readonly readyTimeoutMs?: number;
}

/** Spawns a child and waits for its ready line; the value `ready` returned comes back with it. */
export async function spawnReady<T>(tools: Tools, options: SpawnOptions<T>): Promise<{ child: Child; info: T }> {
  const pinned = options.cpus !== undefined && tools.taskset !== null;
  const command = pinned ? (tools.taskset as string) : options.command;
  const args = pinned ? ["-c", options.cpus as string, options.command, ...options.args] : [...options.args];
  const proc: ChildProcess = spawn(command, args, { cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] });
  track(proc);
  let stderr = "";
  proc.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  const ready = new Promise<T>((resolve, reject) => {
    let buffered = "";
    const timer = setTimeout(
      () => reject(new Error(`${options.name}: not ready after ${options.readyTimeoutMs ?? 20_000} ms\n${stderr}`)),
      options.readyTimeoutMs ?? 20_000,
    );
    proc.stdout?.on("data", (d: Buffer) => {
      buffered += d.toString();
      let nl = buffered.indexOf("\n");
      while (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const value = options.ready(line);
        if (value !== undefined) {
          clearTimeout(timer);
          resolve(value);
        }
        nl = buffered.indexOf("\n");
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${options.name} exited (${code}) before it was ready\n${stderr}`));
    });
  });
  let info: T;
  try {
    info = await ready;
  } catch (err) {
    proc.kill("SIGKILL"); // never leave a half-started server behind
    throw err;
  }
  proc.stdout?.resume();
  const pid = proc.pid as number;
  const child: Child = {
    pid,
    name: options.name,
    exited,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
  return { child, info };
}

/** Runs a command to completion (bounded by `timeoutMs`) and returns its stdout. */
export function runToEnd(
  tools: Tools,
  command: string,
  args: readonly string[],
  cpus: string | undefined,
  timeoutMs: number,
  onLine?: (line: string) => void,
): Promise<string> {
  const pinned = cpus !== undefined && tools.taskset !== null;
  const proc = spawn(pinned ? (tools.taskset as string) : command, pinned ? ["-c", cpus, command, ...args] : [...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  track(proc);
  let out = "";
  let err = "";
  let seen = 0;
  proc.stdout.on("data", (d: Buffer) => {
    out += d.toString();
    if (onLine === undefined) return;
    for (let nl = out.indexOf("\n", seen); nl >= 0; nl = out.indexOf("\n", seen)) {
      onLine(out.slice(seen, nl));
      seen = nl + 1;
    }
  });
  proc.stderr.on("data", (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve, reject) => {
    proc.once("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${command} ${args.join(" ")}: exit ${code ?? signal}\n${err}${out.slice(-2000)}`));
    });
  });
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux; /proc reports CPU time in these ticks

/** CPU seconds (user + system, all threads) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** Resident set size in bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m === null ? Number.NaN : Number(m[1]) * 1024;
}

export function totalCpuSeconds(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
}
