// Starts a real tokenmesh server on 127.0.0.1:0 with a controllable clock, and a nice-grpc client
// for it. Teardown closes the channel and waits for the server to drain.

import { type Channel, type Client, createChannel, createClient } from "nice-grpc";
import { pino } from "pino";
import { resolveConfig } from "../../src/config/load.ts";
import type { ConfigInput } from "../../src/config/schema.ts";
import { RateLimiter } from "../../src/gen/tokenmesh/v1/rate_limiter_pb.ts";
import { niceDefinition } from "../../src/grpc/service-definition.ts";
import { type RunningServer, startServer } from "../../src/server/tokenmesh-server.ts";

export const rateLimiterDefinition = niceDefinition(RateLimiter);
export type RateLimiterClient = Client<typeof rateLimiterDefinition>;

export interface TestServer {
  readonly server: RunningServer;
  readonly client: RateLimiterClient;
  readonly channel: Channel;
  /** Moves the server's clock forward. */
  advance(us: number): void;
  close(): Promise<void>;
}

export const START_US = 1_800_000_000_000_000;

export async function startTestServer(
  config: Omit<ConfigInput, "listen" | "metricsListen" | "logLevel"> & Partial<ConfigInput>,
): Promise<TestServer> {
  let now = START_US;
  // In-process, the server's event loop is the test's: its lag is the test's own work, so load
  // shedding is off unless a test asks for it (limits.shedEventLoopLag).
  const resolved = resolveConfig(
    {
      listen: "127.0.0.1:0",
      metricsListen: null,
      httpListen: "127.0.0.1:0",
      logLevel: "silent",
      dataDir: null,
      ...config,
      limits: { shedEventLoopLag: null, ...config.limits },
    },
    "test",
  );
  const server = await startServer({ config: resolved, log: pino({ level: "silent" }), clock: () => now });
  const channel = createChannel(`127.0.0.1:${server.port}`);
  const client = createClient(rateLimiterDefinition, channel);
  return {
    server,
    client,
    channel,
    advance(us: number) {
      now += us;
    },
    async close() {
      channel.close();
      await server.shutdown();
    },
  };
}
