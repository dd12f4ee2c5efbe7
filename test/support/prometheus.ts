// A real Prometheus (the Debian `prometheus` binary) for tests: scrapes the given loopback
// targets every second, evaluates the given rule files every second, listens on a free loopback
// port, keeps its data in a temp dir. Every wait is bounded; `close()` kills it.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { freePort } from "./process.ts";

export interface PromAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: "pending" | "firing" | "inactive";
  value: string;
}

export interface RunningPrometheus {
  readonly url: string;
  /** An instant query; rejects when Prometheus answers an error. */
  query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  alerts(): Promise<PromAlert[]>;
  /** Resolves once every rule group has been evaluated after this call started. */
  nextEvaluation(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of running) if (c.exitCode === null) c.kill("SIGKILL");
});

async function api<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  const body = (await res.json()) as { status: string; data: T; error?: string };
  if (body.status !== "success") throw new Error(`${url}: ${body.error ?? res.status}`);
  return body.data;
}

export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? "" : ` (last error: ${String(last)})`}`);
}

export async function startPrometheus(options: { targets: readonly string[]; ruleFiles: readonly string[] }): Promise<RunningPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), "tokenmesh-prometheus-"));
  const config = join(dir, "prometheus.yml");
  writeFileSync(
    config,
    stringify({
      global: { scrape_interval: "1s", evaluation_interval: "1s", scrape_timeout: "900ms" },
      rule_files: options.ruleFiles,
      scrape_configs: [{ job_name: "tokenmesh", static_configs: [{ targets: options.targets }] }],
    }),
  );
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(
      "prometheus",
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, `data-${attempt}`)}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    running.add(child);
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const close = async (): Promise<void> => {
      if (child.exitCode === null) child.kill("SIGKILL");
      await exited;
      running.delete(child);
    };
    try {
      await until("Prometheus /-/ready", 30_000, async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited ${child.exitCode}: ${stderr}`);
        return (await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) })).ok ? true : undefined;
      });
    } catch (err) {
      await close();
      if (attempt < 3 && /address already in use/.test(stderr)) continue;
      throw err;
    }
    const prom: RunningPrometheus = {
      url,
      query: async (expr) =>
        (
          await api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(
            `${url}/api/v1/query?query=${encodeURIComponent(expr)}`,
          )
        ).result,
      alerts: async () => (await api<{ alerts: PromAlert[] }>(`${url}/api/v1/alerts`)).alerts,
      async nextEvaluation(timeoutMs = 15_000) {
        const after = Date.now();
        await until("a rule evaluation", timeoutMs, async () => {
          const { groups } = await api<{ groups: { lastEvaluation: string }[] }>(`${url}/api/v1/rules`);
          return groups.length > 0 && groups.every((g) => Date.parse(g.lastEvaluation) > after) ? true : undefined;
        });
      },
      close,
    };
    await until("every target up", 30_000, async () => {
      const { activeTargets } = await api<{ activeTargets: { health: string }[] }>(`${url}/api/v1/targets`);
      return activeTargets.length === options.targets.length && activeTargets.every((t) => t.health === "up") ? true : undefined;
    }).catch(async (err: unknown) => {
      await close();
      throw err;
    });
    return prom;
  }
}
