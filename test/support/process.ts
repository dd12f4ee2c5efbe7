// Helpers for tests that run tokenmesh as a real process: free loopback ports, spawning the CLI,
// waiting for a log line, and collecting exit codes with a hard time bound.

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const CLI = `${REPO_ROOT}bin/tokenmesh.mjs`;

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  server.close();
  await once(server, "close");
  return port;
}

export interface Spawned {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when stdout or stderr contains `text`; rejects after `timeoutMs` or on exit. */
  waitFor(text: string, timeoutMs?: number): Promise<void>;
  /** Exit code (or signal name) within `timeoutMs`, killing the process if it overruns. */
  exited(timeoutMs?: number): Promise<number | string>;
}

/** Every process the tests start, killed when the test worker exits however it exits. */
const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
});

/**
 * Starts the CLI in the repository. Unless `env` says otherwise (TOKENMESH_DATA_DIR, "" for
 * "whatever the config file says"), its snapshots go to a fresh temporary directory, so that
 * no test reads state another test or an earlier run left in ./data.
 */
export function spawnCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Spawned {
  const dataDir = env.TOKENMESH_DATA_DIR ?? mkdtempSync(join(tmpdir(), "tokenmesh-data-"));
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, TOKENMESH_DATA_DIR: dataDir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  child.once("exit", () => children.delete(child));
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const exit = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitFor(text, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const started = Date.now();
        const poll = setInterval(() => {
          if (out.includes(text) || err.includes(text)) {
            clearInterval(poll);
            resolve();
          } else if (child.exitCode !== null || Date.now() - started > timeoutMs) {
            clearInterval(poll);
            reject(new Error(`did not see "${text}" (exit ${child.exitCode}); stdout: ${out}\nstderr: ${err}`));
          }
        }, 20);
      });
    },
    async exited(timeoutMs = 15_000) {
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      try {
        return await exit;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Runs the CLI to completion. */
export async function runCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const p = spawnCli(args, env);
  const code = await p.exited();
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}
