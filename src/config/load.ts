// Reads, overrides from the environment, and validates the config file. I/O lives here; the
// result is a frozen, fully-defaulted config with each policy's exact rate precomputed.

import { readdirSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import type { RateSwitch } from "../core/bucket.ts";
import { makeRate, type Rate } from "../core/rate.ts";
import type { Result } from "../core/result.ts";
import { parseDurationUs } from "./duration.ts";
import { buildRateLimitDomains, type DomainSource, NO_DOMAINS, type RateLimitDomains } from "./rate-limit-config.ts";
import { type Config, configSchema, type EnvoyConfig, type MeshConfig } from "./schema.ts";

export interface Policy {
  readonly name: string;
  readonly rate: Rate;
  /** Present when requests may carry an inline limit for this policy. */
  readonly inline?: { readonly maxCapacity: number; readonly maxRefillPerSecond: number };
  /** Replicated version of the limit (`version`); 0 when the file does not say. */
  readonly version?: number;
  /** `effectiveAt` in microseconds since the epoch; 0: from each key's next fold point. */
  readonly effectiveAtUs?: number;
  /** Mesh admission of contended keys (`contention`); absent: share. */
  readonly contention?: "share" | "local";
  /**
   * Standalone replicas: the limit this policy replaced at a reload, and when the switch took
   * (or takes) effect, so a bucket last seen under the old limit switches at that time
   * (src/config/policy-schedule.ts). Absent in the file's policies and on mesh replicas.
   */
  readonly change?: RateSwitch;
  /** Strict mode (docs/design.md, section 9): the key's bank (mesh only) and the lease. */
  readonly strict?: StrictPolicy;
}

export interface StrictPolicy {
  /** Node name of the bank; absent on a standalone replica (which is its own bank). */
  readonly bank?: string;
  readonly leaseUs: number;
}

export interface ResolvedMesh extends Omit<MeshConfig, "flushInterval" | "retireAfter" | "warmupTimeout" | "helloTimeout" | "dns"> {
  readonly helloTimeoutMs: number;
  readonly flushIntervalUs: number;
  readonly retireAfterUs: number;
  readonly warmupTimeoutUs: number;
  readonly dns?: { readonly name: string; readonly port: number; readonly everyMs: number };
}

/**
 * The limits in force: what every request is validated against, whichever door it came in by.
 * Immutable: a config reload builds a new snapshot and swaps it whole, so a request sees one
 * consistent set from validation to answer.
 */
export interface PolicySnapshot {
  /**
   * The policies in force at `nowUs`, the decision's time. A standalone replica's snapshot holds
   * a change with a future `effectiveAt` as old and new and picks by the time
   * (src/config/policy-schedule.ts); otherwise the answer does not depend on it.
   */
  policiesAt(nowUs: number): ReadonlyMap<string, Policy>;
  /** Envoy rate limit service domains (envoyproxy/ratelimit's format). */
  readonly rateLimitDomains: RateLimitDomains;
}

export interface ResolvedEnvoy {
  readonly domains: RateLimitDomains;
  readonly responseHeaders: boolean;
}

export interface ResolvedLimits extends Omit<Config["limits"], "shedEventLoopLag"> {
  /** Milliseconds behind at which RateLimiter calls are shed, or null: never. */
  readonly shedEventLoopLagMs: number | null;
}

export interface ResolvedConfig
  extends Omit<Config, "policies" | "shutdownGrace" | "mesh" | "node" | "envoy" | "dataDir" | "snapshotInterval" | "limits"> {
  readonly limits: ResolvedLimits;
  /** Snapshot directory, or null when persistence is off. */
  readonly dataDir: string | null;
  readonly snapshotIntervalMs: number;
  /** The name on every log and audit line: `node`, else `mesh.node`, else the host name. */
  readonly node: string;
  readonly policies: ReadonlyMap<string, Policy>;
  readonly shutdownGraceMs: number;
  readonly mesh?: ResolvedMesh;
  readonly envoy: ResolvedEnvoy;
}

/** The file's policies at every time: at start, and on a mesh replica (the replicated core switches limits at tEff). */
export function policySnapshot(config: ResolvedConfig): PolicySnapshot {
  const policies = config.policies;
  return { policiesAt: () => policies, rateLimitDomains: config.envoy.domains };
}

const us = (duration: string): number => parseDurationUs(duration) as number;

function resolveMesh(m: MeshConfig): ResolvedMesh {
  const { flushInterval, retireAfter, warmupTimeout, helloTimeout, dns, ...rest } = m;
  return {
    ...rest,
    helloTimeoutMs: us(helloTimeout) / 1000,
    flushIntervalUs: us(flushInterval),
    retireAfterUs: us(retireAfter),
    warmupTimeoutUs: us(warmupTimeout),
    ...(dns === undefined ? {} : { dns: { name: dns.name, port: dns.port, everyMs: us(dns.every) / 1000 } }),
  };
}

function resolveLimits(l: Config["limits"]): ResolvedLimits {
  const { shedEventLoopLag, ...rest } = l;
  return { ...rest, shedEventLoopLagMs: shedEventLoopLag === null ? null : us(shedEventLoopLag) / 1000 };
}

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`invalid config ${source}:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

/** Environment variables that override the file, for containers and one-off runs. */
export const ENV_OVERRIDES = {
  TOKENMESH_LISTEN: "listen",
  TOKENMESH_METRICS_LISTEN: "metricsListen",
  TOKENMESH_HTTP_LISTEN: "httpListen",
  TOKENMESH_LOG_LEVEL: "logLevel",
  TOKENMESH_DATA_DIR: "dataDir",
} as const;

function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out = { ...raw };
  for (const [variable, field] of Object.entries(ENV_OVERRIDES)) {
    const value = env[variable];
    if (value === undefined || value === "") continue;
    out[field] = (field === "metricsListen" || field === "httpListen" || field === "dataDir") && value === "off" ? null : value;
  }
  return out;
}

/** Reads envoy.configDirectory's *.yaml / *.yml files (sorted by name), one domain per file. */
function readDomainDirectory(directory: string): { sources: DomainSource[]; problems: string[] } {
  const sources: DomainSource[] = [];
  const problems: string[] = [];
  let names: string[];
  try {
    names = readdirSync(directory)
      .filter((n) => /\.ya?ml$/.test(n))
      .sort();
  } catch (err) {
    return { sources, problems: [`envoy.configDirectory: cannot read ${directory}: ${(err as Error).message}`] };
  }
  for (const name of names) {
    const file = join(directory, name);
    try {
      sources.push({ source: file, raw: parseYaml(readFileSync(file, "utf8")) });
    } catch (err) {
      problems.push(`${file}: not valid YAML: ${(err as Error).message}`);
    }
  }
  return { sources, problems };
}

function resolveEnvoy(envoy: EnvoyConfig | undefined, baseDir: string): Result<ResolvedEnvoy, string[]> {
  if (envoy === undefined) return { ok: true, value: { domains: NO_DOMAINS, responseHeaders: false } };
  const sources: DomainSource[] = envoy.domains.map((raw, i) => ({ source: `envoy.domains[${i}]`, raw }));
  if (envoy.configDirectory !== undefined) {
    const read = readDomainDirectory(resolve(baseDir, envoy.configDirectory));
    if (read.problems.length > 0) return { ok: false, error: read.problems };
    sources.push(...read.sources);
  }
  const built = buildRateLimitDomains(sources);
  if (!built.ok) return built;
  return { ok: true, value: { domains: built.value, responseHeaders: envoy.responseHeaders } };
}

/**
 * TOKENMESH_NODE sets mesh.node, so one config serves every replica of a StatefulSet (each pod
 * passes its own name) or of a compose file. Set without a mesh section it is a mistake, reported.
 */
function applyNodeEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv, source: string): Record<string, unknown> {
  const node = env.TOKENMESH_NODE;
  if (node === undefined || node === "") return raw;
  const mesh = raw.mesh;
  if (mesh === null || typeof mesh !== "object" || Array.isArray(mesh)) {
    throw new ConfigError(source, ["TOKENMESH_NODE: set, but the config has no mesh section (only a mesh replica has a node name)"]);
  }
  return { ...raw, mesh: { ...mesh, node } };
}

/**
 * Validates an already-parsed document (exported for tests and embedded defaults). A relative
 * envoy.configDirectory is resolved against `baseDir`: the config file's directory.
 */
export function resolveConfig(raw: unknown, source: string, env: NodeJS.ProcessEnv = {}, baseDir = process.cwd()): ResolvedConfig {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError(source, ["the file must hold a mapping (YAML) or an object (JSON)"]);
  }
  const parsed = configSchema.safeParse(applyNodeEnv(applyEnv(raw as Record<string, unknown>, env), env, source));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.length > 0 ? i.path.join(".") : "(top level)"}: ${i.message}`);
    throw new ConfigError(source, problems);
  }
  const { policies, shutdownGrace, mesh, node, envoy, dataDir, snapshotInterval, limits, ...rest } = parsed.data;
  if (node !== undefined && mesh !== undefined && node !== mesh.node) {
    throw new ConfigError(source, [`node: must equal mesh.node ("${mesh.node}") when both are set`]);
  }
  const resolvedEnvoy = resolveEnvoy(envoy, baseDir);
  if (!resolvedEnvoy.ok) throw new ConfigError(source, resolvedEnvoy.error);
  const resolved = new Map<string, Policy>();
  for (const [name, p] of Object.entries(policies)) {
    const rate = makeRate({ capacity: p.capacity, refillTokens: p.refill, refillPeriodUs: parseDurationUs(p.per) as number });
    if (!rate.ok) throw new ConfigError(source, [`policies.${name}: ${rate.error.message}`]);
    const effectiveAtUs = p.effectiveAt === undefined ? 0 : Date.parse(p.effectiveAt) * 1000;
    const strict: StrictPolicy | undefined =
      p.mode === "strict" ? { leaseUs: parseDurationUs(p.lease) as number, ...(p.bank === undefined ? {} : { bank: p.bank }) } : undefined;
    resolved.set(name, {
      name,
      rate: rate.value,
      version: p.version,
      effectiveAtUs,
      contention: p.contention,
      ...(p.inline ? { inline: p.inline } : {}),
      ...(strict === undefined ? {} : { strict }),
    });
  }
  const name = node ?? mesh?.node ?? hostname();
  return {
    ...rest,
    limits: resolveLimits(limits),
    node: name,
    dataDir: dataDir === undefined ? `./data/${name}` : dataDir,
    snapshotIntervalMs: us(snapshotInterval) / 1000,
    policies: resolved,
    shutdownGraceMs: us(shutdownGrace) / 1000,
    envoy: resolvedEnvoy.value,
    ...(mesh === undefined ? {} : { mesh: resolveMesh(mesh) }),
  };
}

export async function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Promise<ResolvedConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new ConfigError(path, [`cannot read the file: ${(err as Error).message}`]);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text); // YAML 1.2 is a superset of JSON, so .json files parse too.
  } catch (err) {
    throw new ConfigError(path, [`not valid YAML/JSON: ${(err as Error).message}`]);
  }
  return resolveConfig(raw, path, env, dirname(resolve(path)));
}
