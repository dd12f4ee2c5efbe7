// A new incarnation does not admit before it has synced with a peer (or its warm-up timed out):
// until then Consume answers UNAVAILABLE (clients try another replica) and health reports the
// RateLimiter NOT_SERVING; a replica with no peers configured serves at once.

import { ClientError, createClient, Status } from "nice-grpc";
import { HealthDefinition } from "nice-grpc-server-health";
import { afterAll, describe, expect, it } from "vitest";
import { eventually, type InProcessMesh, startInProcessMesh } from "../support/mesh.ts";
import { freePort } from "../support/process.ts";

describe("warm-up of a new incarnation", () => {
  let mesh: InProcessMesh | undefined;
  afterAll(async () => {
    await mesh?.close();
  });

  it("refuses until the warm-up timeout when no peer answers, then serves", async () => {
    const deadPeer = `127.0.0.1:${await freePort()}`;
    mesh = await startInProcessMesh({
      size: 1,
      policies: { api: { capacity: 5, refill: 1, per: "1s" } },
      mesh: () => ({ peers: [deadPeer], warmupTimeout: "1500ms" }),
    });
    const r = mesh.replicas[0];
    const health = createClient(HealthDefinition, r?.channel as NonNullable<typeof r>["channel"]);
    const started = Date.now();
    const err = await r?.client.consume({ decisions: [{ buckets: [{ policy: "api", key: "w" }] }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect((err as ClientError).code).toBe(Status.UNAVAILABLE);
    expect((err as ClientError).details).toMatch(/^replica: warming up/);
    expect((await health.check({ service: "tokenmesh.v1.RateLimiter" })).status).toBe(2); // NOT_SERVING
    await eventually(
      async () => (await health.check({ service: "tokenmesh.v1.RateLimiter" })).status === 1,
      5_000,
      "serving after the timeout",
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    const ok = await r?.client.consume({ decisions: [{ buckets: [{ policy: "api", key: "w" }] }] });
    expect(ok?.results[0]?.allowed).toBe(true);
  });
});
