// Live config: SIGHUP or a change of the config file reloads it. The whole file is read and
// validated first; only a file that passes every check replaces the policy snapshot, whole
// (built by the server: a standalone replica schedules changes with a future `effectiveAt`).
// Any problem (bad YAML, a field out of range, a setting that cannot change live, a limit that
// changed without a higher `version`) refuses the whole reload: the old config keeps serving,
// the problem is logged with its field path and counted. A reload never stops the process.

import { type FSWatcher, watch } from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "pino";
import { Counter } from "prom-client";
import { ConfigError, loadConfigFile, type Policy, type ResolvedConfig } from "../config/load.ts";
import { sameRate } from "../core/rate.ts";
import type { Result } from "../core/result.ts";
import type { Metrics } from "../metrics/metrics.ts";

/** Settings read once at start-up; a reload that changes one is refused, naming it. */
const FIXED_AT_START = [
  "listen",
  "metricsListen",
  "httpListen",
  "node",
  "mesh",
  "tls",
  "limits",
  "audit",
  "shutdownGraceMs",
  "dataDir",
  "snapshotIntervalMs",
] as const;

export interface ReloadTarget {
  /** Called with the new config once it passed every check (the target builds its policy snapshot). */
  readonly apply: (config: ResolvedConfig) => void;
  /** The largest capacity / tokens per second peers' counts are held to (mesh only). */
  readonly bound?: { readonly capacity: number; readonly tokensPerSecond: number };
}

/** What changed (`+name` added, `-name` removed, `name` a new version, `envoy`), or every problem that refused the reload. */
export type ReloadResult = Result<string[], string[]>;

function tokensPerSecond(p: Policy): number {
  return (p.rate.refillTokens * 1e6) / p.rate.refillPeriodUs;
}

/** What a reload from `old` to `next` may not do; empty when it may apply. */
export function reloadProblems(old: ResolvedConfig, next: ResolvedConfig, target: ReloadTarget): string[] {
  const problems: string[] = [];
  for (const field of FIXED_AT_START) {
    if (JSON.stringify(old[field]) !== JSON.stringify(next[field]))
      problems.push(`${field}: cannot change live; restart the replica to change it`);
  }
  for (const [name, p] of next.policies) {
    const was = old.policies.get(name);
    const version = p.version ?? 0;
    if (was !== undefined) {
      const wasVersion = was.version ?? 0;
      const changed = !sameRate(was.rate, p.rate) || (was.effectiveAtUs ?? 0) !== (p.effectiveAtUs ?? 0);
      if (version < wasVersion) problems.push(`policies.${name}.version: ${version} is below the version in force (${wasVersion})`);
      else if (changed && version === wasVersion)
        problems.push(
          `policies.${name}.version: the limit changed, so the version must rise above ${wasVersion} (the higher version wins in the mesh)`,
        );
    }
    const bound = target.bound;
    if (bound !== undefined && (p.rate.capacity > bound.capacity || tokensPerSecond(p) > bound.tokensPerSecond))
      problems.push(
        `policies.${name}: above what peers accept (capacity ${bound.capacity}, ${bound.tokensPerSecond} tokens/s: 10x the limits this replica started with); restart to raise it that far`,
      );
  }
  return problems;
}

export class ConfigReloader {
  #config: ResolvedConfig;
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #running: Promise<ReloadResult> | undefined;
  /** The run queued behind the current one, shared by every call made during the current one. */
  #queued: Promise<ReloadResult> | undefined;
  readonly #reloads: Counter<"result">;

  constructor(
    readonly path: string,
    initial: ResolvedConfig,
    private readonly target: ReloadTarget,
    private readonly log: Logger,
    metrics: Metrics,
  ) {
    this.#config = initial;
    this.#reloads = new Counter({
      name: "tokenmesh_config_reloads_total",
      help: "Config reloads (SIGHUP or a change of the file), by result: success applied the file, failure kept the old config.",
      labelNames: ["result"] as const,
      registers: [metrics.registry],
    });
    this.#reloads.inc({ result: "success" }, 0);
    this.#reloads.inc({ result: "failure" }, 0);
  }

  get config(): ResolvedConfig {
    return this.#config;
  }

  /**
   * Reloads now. A call during a run queues one more run, which reads the file after the current
   * run ends, and gets that run's result: a caller that wrote the file before calling never sees
   * a result that predates its write. Calls during a run share the one queued run.
   */
  reload(reason: string): Promise<ReloadResult> {
    if (this.#running === undefined) return this.#start(reason);
    const next = (): Promise<ReloadResult> => {
      this.#queued = undefined;
      return this.#start(reason);
    };
    this.#queued ??= this.#running.then(next, next);
    return this.#queued;
  }

  #start(reason: string): Promise<ReloadResult> {
    const run = this.#run(reason).finally(() => {
      if (this.#running === run) this.#running = undefined;
    });
    this.#running = run;
    return run;
  }

  async #run(reason: string): Promise<ReloadResult> {
    const started = performance.now();
    let next: ResolvedConfig;
    try {
      next = await loadConfigFile(this.path);
    } catch (err) {
      const problems = err instanceof ConfigError ? [...err.problems] : [(err as Error).message];
      return this.#fail(reason, problems);
    }
    const problems = reloadProblems(this.#config, next, this.target);
    if (problems.length > 0) return this.#fail(reason, problems);
    const changed = changedPolicies(this.#config, next);
    this.target.apply(next);
    this.#config = next;
    this.#reloads.inc({ result: "success" });
    this.log.info({ reason, changed, ms: Math.round((performance.now() - started) * 10) / 10 }, "config reloaded");
    return { ok: true, value: changed };
  }

  #fail(reason: string, problems: string[]): ReloadResult {
    this.#reloads.inc({ result: "failure" });
    this.log.error({ reason, file: this.path, problems }, "config reload refused: the old config keeps serving");
    return { ok: false, error: problems };
  }

  /** Watches the file's directory (editors replace files by rename), debounced by `debounceMs`. */
  watch(debounceMs = 200): void {
    const name = this.path.slice(dirname(this.path).length + 1);
    this.#watcher = watch(dirname(this.path), (_event, file) => {
      if (file !== null && file !== name) return;
      clearTimeout(this.#debounce);
      this.#debounce = setTimeout(() => void this.reload("file changed"), debounceMs);
    });
    this.#watcher.on("error", (err) => this.log.warn({ err, file: this.path }, "config file watch failed; SIGHUP still reloads"));
  }

  close(): void {
    clearTimeout(this.#debounce);
    this.#watcher?.close();
  }
}

function changedPolicies(old: ResolvedConfig, next: ResolvedConfig): string[] {
  const out: string[] = [];
  for (const [name, p] of next.policies) {
    const was = old.policies.get(name);
    if (was === undefined) out.push(`+${name}`);
    else if ((was.version ?? 0) !== (p.version ?? 0)) out.push(name);
  }
  for (const name of old.policies.keys()) if (!next.policies.has(name)) out.push(`-${name}`);
  if (JSON.stringify(old.envoy) !== JSON.stringify(next.envoy)) out.push("envoy");
  return out;
}
