// Closed-loop load through each of tokenmesh's doors against one server process: gRPC Consume
// (the baseline), Envoy ShouldRateLimit on the same port, and Consume over HTTP/JSON (Connect)
// and GET /v1/check on the HTTP port. Each call is one decision on one bucket of a 10k-key space;
// what is compared is the server's CPU per call, read from /proc, so the driver's own speed (it
// runs in this process) does not enter the figures.

import { mkdtempSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createChannel, createClient } from "nice-grpc";
import { RateLimitService } from "../../src/gen/envoy/service/ratelimit/v3/rls_pb.ts";
import { RateLimiter } from "../../src/gen/tokenmesh/v1/rate_limiter_pb.ts";
import { niceDefinition } from "../../src/grpc/service-definition.ts";
import { keyName, seededRandom } from "./keys.ts";
import { type Child, cpuSeconds, spawnReady } from "./processes.ts";
import type { Tools } from "./tools.ts";

export type Door = "grpc-consume" | "rls" | "http-consume" | "http-check";
export const DOORS: readonly Door[] = ["grpc-consume", "rls", "http-consume", "http-check"];

const KEYS = 10_000;
const REPO = new URL("../../", import.meta.url).pathname;

export interface DoorsServer {
  readonly child: Child;
  readonly grpc: string;
  readonly httpPort: number;
}

export async function startDoorsServer(tools: Tools): Promise<DoorsServer> {
  const dir = mkdtempSync(join(tmpdir(), "tokenmesh-doors-"));
  const config = join(dir, "config.yaml");
  writeFileSync(
    config,
    [
      "listen: 127.0.0.1:0",
      "metricsListen: null",
      "httpListen: 127.0.0.1:0",
      "logLevel: info",
      "policies: { bench: { capacity: 1000, refill: 1000, per: 1s } }",
      "envoy:",
      "  domains:",
      "    - domain: bench",
      "      descriptors: [ { key: k, rate_limit: { unit: second, requests_per_unit: 1000 } } ]",
      "",
    ].join("\n"),
  );
  const { child, info } = await spawnReady(tools, {
    name: "tokenmesh",
    command: process.execPath,
    args: [join(REPO, "bin/tokenmesh.mjs"), "serve", "--config", config],
    cpus: tools.serverCpus,
    ready: (line) => (line.includes("tokenmesh serving") ? (JSON.parse(line) as { address: string; httpPort: number }) : undefined),
  });
  return { child, grpc: info.address, httpPort: info.httpPort };
}

export interface DoorMeasurement {
  readonly door: Door;
  readonly calls: number;
  readonly errors: number;
  readonly serverCpuUsPerCall: number;
  readonly callsPerSecond: number;
}

/** One call through `door`, as a function of the key index; resolves true when it succeeded. */
function caller(server: DoorsServer, door: Door): { call: (k: number) => Promise<boolean>; close: () => void } {
  if (door === "grpc-consume" || door === "rls") {
    const channel = createChannel(server.grpc);
    if (door === "grpc-consume") {
      const client = createClient(niceDefinition(RateLimiter), channel);
      return {
        call: async (k) =>
          (await client.consume({ decisions: [{ buckets: [{ policy: "bench", key: keyName(k) }] }] })).results.length === 1,
        close: () => channel.close(),
      };
    }
    const client = createClient(niceDefinition(RateLimitService), channel);
    return {
      call: async (k) =>
        (await client.shouldRateLimit({ domain: "bench", descriptors: [{ entries: [{ key: "k", value: keyName(k) }] }] })).statuses
          .length === 1,
      close: () => channel.close(),
    };
  }
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const http = (method: string, path: string, body?: string): Promise<boolean> =>
    new Promise((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: server.httpPort,
          method,
          path,
          agent,
          headers: body === undefined ? {} : { "content-type": "application/json" },
        },
        (res) => {
          res.resume();
          res.once("end", () => resolve(res.statusCode === 200 || res.statusCode === 429));
        },
      );
      req.once("error", reject);
      req.end(body);
    });
  if (door === "http-consume") {
    return {
      call: (k) =>
        http("POST", "/tokenmesh.v1.RateLimiter/Consume", `{"decisions":[{"buckets":[{"policy":"bench","key":"${keyName(k)}"}]}]}`),
      close: () => agent.destroy(),
    };
  }
  return { call: (k) => http("GET", `/v1/check?policy=bench&key=${keyName(k)}`), close: () => agent.destroy() };
}

/** `inFlight` callers loop for `warmupS` then `runS` seconds; only the second part counts. */
export async function measureDoor(
  server: DoorsServer,
  door: Door,
  options: { readonly inFlight: number; readonly warmupS: number; readonly runS: number; readonly seed: number },
): Promise<DoorMeasurement> {
  const random = seededRandom(options.seed);
  const { call, close } = caller(server, door);
  let counting = false;
  let calls = 0;
  let errors = 0;
  let stopAt = Date.now() + (options.warmupS + options.runS) * 1000;
  const loop = async (): Promise<void> => {
    while (Date.now() < stopAt) {
      const ok = await call(Math.floor(random() * KEYS)).catch(() => false);
      if (!counting) continue;
      if (ok) calls++;
      else errors++;
    }
  };
  const loops = Array.from({ length: options.inFlight }, loop);
  await new Promise((r) => setTimeout(r, options.warmupS * 1000));
  counting = true;
  const cpu0 = cpuSeconds(server.child.pid);
  const t0 = performance.now();
  stopAt = Date.now() + options.runS * 1000;
  await Promise.all(loops);
  const cpu = cpuSeconds(server.child.pid) - cpu0;
  const seconds = (performance.now() - t0) / 1000;
  close();
  return { door, calls, errors, serverCpuUsPerCall: (cpu * 1e6) / Math.max(1, calls), callsPerSecond: calls / seconds };
}
