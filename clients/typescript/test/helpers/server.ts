// A real tokenmesh server on 127.0.0.1:0 for the client tests, with a counter of RPCs as the
// server saw them (read from its own request-duration histogram).

import { pino } from "pino";
import { resolveConfig } from "../../../../src/config/load.ts";
import { type RunningServer, startServer } from "../../../../src/server/tokenmesh-server.ts";

export interface TestServer {
  readonly address: string;
  readonly running: RunningServer;
  /** RPCs the server has handled for a method ("Consume" or "Query"), all status codes. */
  rpcs(method: "Consume" | "Query"): Promise<number>;
  stop(): Promise<void>;
}

export const TEST_POLICIES = {
  api: { capacity: 5, refill: 1, per: "1s" },
  // Refills slowly, so a denied key stays denied for the length of a test.
  slow: { capacity: 2, refill: 1, per: "1m" },
  big: { capacity: 1_000_000_000, refill: 1_000_000_000, per: "1s" },
} as const;

export async function startTestServer(listen = "127.0.0.1:0", limits: Record<string, number> = {}): Promise<TestServer> {
  const config = resolveConfig(
    // In-process, the server shares the test's event loop: no load shedding on the test's own work.
    {
      listen,
      metricsListen: null,
      httpListen: null,
      logLevel: "silent",
      dataDir: null,
      policies: TEST_POLICIES,
      limits: { shedEventLoopLag: null, ...limits },
    },
    "test",
  );
  const running = await startServer({ config, log: pino({ level: "silent" }) });
  return {
    address: `127.0.0.1:${running.port}`,
    running,
    async rpcs(method) {
      const metric = await running.metrics.registry.getSingleMetricAsString("tokenmesh_request_duration_seconds");
      let total = 0;
      for (const line of metric.split("\n")) {
        if (
          line.startsWith("tokenmesh_request_duration_seconds_count") &&
          line.includes('grpc_service="tokenmesh.v1.RateLimiter"') &&
          line.includes(`grpc_method="${method}"`)
        ) {
          total += Number(line.slice(line.lastIndexOf(" ") + 1));
        }
      }
      return total;
    },
    stop: () => running.shutdown(),
  };
}

/** A port that refuses connections: bound, noted, and closed again. */
export async function deadAddress(): Promise<string> {
  const { createServer } = await import("node:net");
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `127.0.0.1:${port}`;
}
