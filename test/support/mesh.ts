// In-process replicas on loopback for mesh tests: real servers, real Peer streams, the system
// clock. Each replica gets its own client channel; `close()` shuts everything down.

import { type Channel, createChannel, createClient } from "nice-grpc";
import { type Logger, pino } from "pino";
import { resolveConfig } from "../../src/config/load.ts";
import type { ConfigInput } from "../../src/config/schema.ts";
import { type RunningServer, startServer } from "../../src/server/tokenmesh-server.ts";
import { freePort } from "./process.ts";
import { type RateLimiterClient, rateLimiterDefinition } from "./server.ts";
import type { CertFiles } from "./test-certs.ts";

export interface MeshReplica {
  readonly name: string;
  readonly server: RunningServer;
  readonly client: RateLimiterClient;
  readonly channel: Channel;
  readonly peerAddress: string;
}

export interface InProcessMesh {
  readonly replicas: MeshReplica[];
  close(): Promise<void>;
}

export type MeshInput = NonNullable<ConfigInput["mesh"]>;

export interface MeshSpec {
  readonly size: number;
  readonly policies: ConfigInput["policies"];
  /** Per replica overrides of the mesh section (tls, peers, ...). */
  readonly mesh?: (i: number, peerAddresses: readonly string[]) => Partial<MeshInput>;
  readonly tls?: (name: string) => CertFiles;
  /** Per replica protocol range (upgrade tests). */
  readonly versions?: (i: number) => { min: number; max: number } | undefined;
  /** Per replica logger (default: silent). */
  readonly log?: (i: number) => Logger;
}

/** Starts the mesh, retrying with fresh ports if one picked in advance was taken meanwhile. */
export async function startInProcessMesh(spec: MeshSpec): Promise<InProcessMesh> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(spec);
    } catch (err) {
      if (attempt >= 3 || !/EADDRINUSE/.test(String(err))) throw err;
    }
  }
}

async function startOnce(spec: MeshSpec): Promise<InProcessMesh> {
  const ports = await Promise.all(Array.from({ length: spec.size }, () => freePort()));
  const addresses = ports.map((p) => `127.0.0.1:${p}`);
  const replicas: MeshReplica[] = [];
  for (let i = 0; i < spec.size; i++) {
    const name = `r${i + 1}`;
    const tls = spec.tls?.(name);
    const mesh: MeshInput = {
      node: name,
      cluster: "test",
      peerListen: addresses[i] as string,
      peers: addresses.filter((_, j) => j !== i),
      retireAfter: "2s",
      warmupTimeout: "1s",
      ...(tls === undefined ? { insecure: true } : { tls }),
      ...spec.mesh?.(i, addresses),
    };
    const config = resolveConfig(
      // In-process replicas share the test's event loop: no load shedding on its lag.
      {
        listen: "127.0.0.1:0",
        metricsListen: null,
        httpListen: null,
        logLevel: "silent",
        dataDir: null,
        limits: { shedEventLoopLag: null },
        mesh,
        policies: spec.policies,
      },
      name,
    );
    let server: RunningServer;
    try {
      const versions = spec.versions?.(i);
      server = await startServer({
        config,
        log: spec.log?.(i) ?? pino({ level: "silent" }),
        ...(versions === undefined ? {} : { protocolVersions: versions }),
      });
    } catch (err) {
      for (const r of replicas) r.channel.close();
      await Promise.all(replicas.map((r) => r.server.shutdown()));
      throw err;
    }
    const channel = createChannel(`127.0.0.1:${server.port}`);
    replicas.push({ name, server, channel, client: createClient(rateLimiterDefinition, channel), peerAddress: addresses[i] as string });
  }
  return {
    replicas,
    async close() {
      for (const r of replicas) r.channel.close();
      await Promise.all(replicas.map((r) => r.server.shutdown()));
    },
  };
}

/** Polls `check` every 20 ms until it returns true or `timeoutMs` passes. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
}
