// Every door on a real 3-process mesh: an Envoy client (built from Envoy's own rls.proto) and
// HTTP callers consume on one replica and the others see it, so ShouldRateLimit and /v1/check
// limits are ordinary replicated buckets. Limits refill per hour, so nothing refills mid-test.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EnvoyClient, envoyClient } from "../support/envoy-client.ts";
import { eventually } from "../support/mesh.ts";
import { type ProcessMesh, startProcessMesh } from "../support/mesh-processes.ts";

let mesh: ProcessMesh;
let envoy: EnvoyClient[];

beforeAll(async () => {
  mesh = await startProcessMesh({
    size: 3,
    policies: { login: { capacity: 3, refill: 1, per: "1h" }, marker: { capacity: 1000, refill: 1, per: "1h" } },
    config: {
      envoy: {
        domains: [
          { domain: "example", descriptors: [{ key: "generic_key", value: "demo", rate_limit: { unit: "hour", requests_per_unit: 5 } }] },
        ],
      },
    },
  });
  await mesh.fullyConnected();
  await Promise.all(mesh.replicas.map((_, i) => mesh.ready(i)));
  envoy = mesh.replicas.map((r) => envoyClient(r.address));
}, 180_000);
afterAll(async () => {
  for (const c of envoy ?? []) c.close();
  await mesh?.close();
});

/**
 * Waits until replica `to` has what replica `from` did so far: a marker consumed on `from` after
 * the work travels on the same ordered stream, so once `to` sees it, it has seen the work too.
 */
async function replicated(from: number, to: number, seen: { n: number }): Promise<void> {
  seen.n++;
  const marker = { decisions: [{ buckets: [{ policy: "marker", key: `m${from}` }] }] };
  await mesh.replicas[from]?.client.consume(marker);
  const want = BigInt(1000 - seen.n);
  await eventually(
    async () => (await mesh.replicas[to]?.client.query(marker))?.results[0]?.buckets[0]?.remaining === want,
    10_000,
    `replica ${to} sees replica ${from}'s work`,
  );
}

describe("doors on a 3-replica mesh", () => {
  it("ShouldRateLimit: OK then OVER_LIMIT, consumption shared across replicas", async () => {
    const request = { domain: "example", descriptors: [{ entries: [{ key: "generic_key", value: "demo" }] }] };
    const seen = { n: 0 };
    const first = await envoy[0]?.shouldRateLimit({ ...request, hits_addend: 3 });
    expect(first?.overall_code).toBe("OK");
    expect(first?.statuses[0]?.limit_remaining).toBe(2);
    await replicated(0, 1, seen);
    const second = await envoy[1]?.shouldRateLimit({ ...request, hits_addend: 2 });
    expect(second?.overall_code).toBe("OK");
    expect(second?.statuses[0]?.limit_remaining).toBe(0);
    const seen1 = { n: 0 };
    await replicated(1, 2, seen1);
    const third = await envoy[2]?.shouldRateLimit(request);
    expect(third?.overall_code).toBe("OVER_LIMIT");
    expect(third?.statuses[0]).toMatchObject({
      code: "OVER_LIMIT",
      limit_remaining: 0,
      current_limit: { requests_per_unit: 5, unit: "HOUR" },
    });
  });

  it("HTTP: /v1/check and Connect Consume on different replicas share one bucket", async () => {
    const http = (i: number) => `http://127.0.0.1:${mesh.replicas[i]?.httpPort}`;
    expect((await fetch(`${http(0)}/v1/check?policy=login&key=bob`)).status).toBe(200);
    const bucket = { decisions: [{ buckets: [{ policy: "login", key: "bob" }] }] };
    await eventually(
      async () => (await mesh.replicas[1]?.client.query(bucket))?.results[0]?.buckets[0]?.remaining === 2n,
      10_000,
      "replica 2 sees the check",
    );
    const consumed = await fetch(`${http(1)}/tokenmesh.v1.RateLimiter/Consume`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ decisions: [{ buckets: [{ policy: "login", key: "bob", cost: 2 }] }] }),
    });
    expect(((await consumed.json()) as { results: { allowed: boolean }[] }).results[0]?.allowed).toBe(true);
    await eventually(
      async () => (await mesh.replicas[2]?.client.query(bucket))?.results[0]?.buckets[0]?.remaining === 0n,
      10_000,
      "replica 3 sees both",
    );
    const denied = await fetch(`${http(2)}/v1/check?policy=login&key=bob`);
    expect(denied.status).toBe(429);
    expect(Number(denied.headers.get("retry-after"))).toBeGreaterThan(0);
    for (let i = 0; i < 3; i++) expect(await (await fetch(`${http(i)}/health`)).json()).toEqual({ status: "ok" });
  });
});
