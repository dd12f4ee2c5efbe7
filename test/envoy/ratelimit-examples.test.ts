// envoyproxy/ratelimit's README configuration examples 1-7, each turned into request/answer
// pairs, asked over gRPC by a client built from Envoy's own rls.proto against a real server on
// loopback (with a test clock, so refills are exact). The configs are YAML in ratelimit's format.

import { afterEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { type EnvoyClient, type EnvoyResponse, envoyClient } from "../support/envoy-client.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

import { examples } from "./ratelimit-example-tables.ts";

function summarize(r: EnvoyResponse): { overall: string; statuses: (string | number | null)[][] } {
  return {
    overall: r.overall_code,
    statuses: r.statuses.map((s) => [
      s.code,
      s.current_limit === null ? null : `${s.current_limit.requests_per_unit}/${s.current_limit.unit}`,
      s.limit_remaining,
    ]),
  };
}

describe("envoyproxy/ratelimit README examples", () => {
  let t: TestServer | undefined;
  let client: EnvoyClient | undefined;
  afterEach(async () => {
    client?.close();
    await t?.close();
  });

  for (const example of examples) {
    it(`example ${example.name}`, async () => {
      const domain = parse(example.yaml) as { domain: string };
      t = await startTestServer({ policies: { api: { capacity: 1, refill: 1, per: "1s" } }, envoy: { domains: [domain] } });
      client = envoyClient(`127.0.0.1:${t.server.port}`);
      for (const [i, step] of example.steps.entries()) {
        if (step.after !== undefined) t.advance(step.after);
        const response = await client.shouldRateLimit({
          domain: domain.domain,
          descriptors: step.send.map((entries) => ({ entries: entries.map(([key, value]) => ({ key, value })) })),
          ...(step.hits === undefined ? {} : { hits_addend: step.hits }),
        });
        expect(summarize(response), `step ${i}`).toEqual({ overall: step.overall, statuses: step.statuses });
      }
    });
  }

  it("counts shadow-mode denials, and reports the time until a bucket is full", async () => {
    const domain = parse(examples[5]?.yaml ?? "") as { domain: string };
    t = await startTestServer({ policies: { api: { capacity: 1, refill: 1, per: "1s" } }, envoy: { domains: [domain] } });
    client = envoyClient(`127.0.0.1:${t.server.port}`);
    const userA = {
      domain: "example6",
      descriptors: [
        {
          entries: [
            { key: "service", value: "s" },
            { key: "user", value: "user-a" },
          ],
        },
      ],
    };
    const first = await client.shouldRateLimit({ ...userA, hits_addend: 5 });
    // 5 of 10 per second used: full again in half a second.
    expect(first.statuses[0]?.duration_until_reset).toEqual({ seconds: 0, nanos: 500_000_000 });
    await client.shouldRateLimit({ ...userA, hits_addend: 5 });
    for (let i = 0; i < 3; i++) expect((await client.shouldRateLimit(userA)).overall_code).toBe("OK");
    const metrics = await t.server.metrics.registry.metrics();
    expect(metrics).toContain('tokenmesh_shadow_mode_denials_total{rule="example6.service.user_user-a"} 3');
  });

  it("adds RateLimit and RateLimit-Policy headers when envoy.responseHeaders is on", async () => {
    const domain = parse(examples[1]?.yaml ?? "") as { domain: string };
    t = await startTestServer({
      policies: { api: { capacity: 1, refill: 1, per: "1s" } },
      envoy: { domains: [domain], responseHeaders: true },
    });
    client = envoyClient(`127.0.0.1:${t.server.port}`);
    const r = await client.shouldRateLimit({
      domain: "messaging",
      descriptors: [
        { entries: [{ key: "to_number", value: "1" }] },
        {
          entries: [
            { key: "message_type", value: "marketing" },
            { key: "to_number", value: "1" },
          ],
        },
      ],
    });
    // The tightest descriptor: 4 of 5 a day left, whole again in 1/5 of a day.
    expect(r.response_headers_to_add.map(({ key, value }) => ({ key, value }))).toEqual([
      { key: "RateLimit", value: '"messaging.message_type_marketing.to_number";r=4;t=17280' },
      { key: "RateLimit-Policy", value: '"messaging.message_type_marketing.to_number";q=5;w=86400' },
    ]);
  });
});
