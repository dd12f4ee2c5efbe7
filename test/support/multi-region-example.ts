// The two-region example in config/multi-region/, copied for a test: every distinct port of the
// four files is replaced by one free port (so the peer lists stay consistent) and each replica
// gets a fresh data directory; nothing else in the files changes.

import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { freePort, REPO_ROOT } from "./process.ts";

export const EXAMPLE_DIR = join(REPO_ROOT, "config/multi-region");

export interface ExampleConfig {
  listen: string;
  metricsListen: string;
  httpListen: string;
  dataDir: string;
  mesh: { node: string; region: string; peerListen: string; peers: string[]; relays?: boolean };
  policies?: Record<string, unknown>;
}

/** One replica's file as shipped and as copied: its moved client address and metrics port, and the copy's path. */
export interface ExampleCopy {
  readonly config: ExampleConfig;
  readonly address: string;
  readonly metricsPort: number;
  readonly path: string;
}

const portOf = (hostPort: string): number => Number(hostPort.slice(hostPort.lastIndexOf(":") + 1));

/** The example's files in name order, parsed. */
export function exampleConfigs(): { readonly files: string[]; readonly configs: ExampleConfig[] } {
  const files = readdirSync(EXAMPLE_DIR)
    .filter((f) => f.endsWith(".yaml"))
    .sort();
  return { files, configs: files.map((f) => parse(readFileSync(join(EXAMPLE_DIR, f), "utf8")) as ExampleConfig) };
}

/**
 * Writes the example's files into a new temporary directory with free ports; `extraPolicies`
 * (config syntax) are added to every copy's policies, the same in each file.
 */
export async function copyExampleOnFreePorts(dirPrefix: string, extraPolicies: Record<string, unknown> = {}): Promise<ExampleCopy[]> {
  const { files, configs } = exampleConfigs();
  const dir = mkdtempSync(join(tmpdir(), dirPrefix));
  const ports = new Map<number, number>();
  for (const c of configs) {
    for (const hp of [c.listen, c.metricsListen, c.httpListen, c.mesh.peerListen]) ports.set(portOf(hp), await freePort());
  }
  const moved = (hp: string): string => `127.0.0.1:${ports.get(portOf(hp))}`;
  return configs.map((c, i) => {
    const copy: ExampleConfig = {
      ...c,
      policies: { ...c.policies, ...extraPolicies },
      listen: moved(c.listen),
      metricsListen: moved(c.metricsListen),
      httpListen: moved(c.httpListen),
      dataDir: join(dir, `${c.mesh.node}-data`),
      mesh: { ...c.mesh, peerListen: moved(c.mesh.peerListen), peers: c.mesh.peers.map(moved) },
    };
    const path = join(dir, files[i] as string);
    writeFileSync(path, stringify(copy));
    return { config: c, address: copy.listen, metricsPort: portOf(copy.metricsListen), path };
  });
}
