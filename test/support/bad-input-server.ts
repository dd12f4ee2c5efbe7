// The server the HTTP bad-input tests share (test/http/bad-input.test.ts for JSON and /v1/check,
// bad-binary-input.test.ts for application/proto): two policies (login takes inline limits) and a
// 64 KiB message limit, which the expected messages name ("known: api, login", "65536").

import { startTestServer, type TestServer } from "./server.ts";

export interface BadInputServer {
  readonly t: TestServer;
  /** http://127.0.0.1:PORT of the HTTP door. */
  readonly base: string;
}

export async function startBadInputServer(): Promise<BadInputServer> {
  const t = await startTestServer({
    policies: {
      api: { capacity: 10, refill: 1, per: "1s" },
      login: { capacity: 5, refill: 1, per: "10s", inline: { maxCapacity: 100, maxRefillPerSecond: 100 } },
    },
    limits: { maxMessageBytes: 65_536 },
  });
  return { t, base: `http://127.0.0.1:${t.server.httpPort}` };
}
