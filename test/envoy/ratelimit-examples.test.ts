// envoyproxy/ratelimit's README configuration examples 1-7, each turned into request/answer
// pairs, asked over gRPC by a client built from Envoy's own rls.proto against a real server on
// loopback (with a test clock, so refills are exact). The configs are YAML in ratelimit's format.

import { afterEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { type EnvoyClient, type EnvoyResponse, envoyClient } from "../support/envoy-client.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

type Entries = [string, string][];

interface Step {
  /** Descriptors of the request, each a list of [key, value] entries. */
  readonly send: Entries[];
  readonly hits?: number;
  /** Microseconds the clock moves before this request. */
  readonly after?: number;
  readonly overall: "OK" | "OVER_LIMIT";
  /** Per descriptor: code, then the limit (requests per unit) and what remains; null for no limit. */
  readonly statuses: ([code: "OK" | "OVER_LIMIT", limit: string, remaining: number] | [code: "OK", limit: null, remaining: number])[];
}

interface Example {
  readonly name: string;
  readonly yaml: string;
  readonly steps: Step[];
}

const MAX_UINT32 = 4_294_967_295;

const examples: Example[] = [
  {
    name: "1: two values of one key, each its own limit",
    yaml: `
domain: mongo_cps
descriptors:
  - key: database
    value: users
    rate_limit: { unit: second, requests_per_unit: 500 }
  - key: database
    value: default
    rate_limit: { unit: second, requests_per_unit: 500 }`,
    steps: [
      { send: [[["database", "users"]]], overall: "OK", statuses: [["OK", "500/SECOND", 499]] },
      { send: [[["database", "default"]]], overall: "OK", statuses: [["OK", "500/SECOND", 499]] },
      { send: [[["database", "users"]]], hits: 499, overall: "OK", statuses: [["OK", "500/SECOND", 0]] },
      { send: [[["database", "users"]]], overall: "OVER_LIMIT", statuses: [["OVER_LIMIT", "500/SECOND", 0]] },
      // A value the config does not list matches nothing (no key-only entry): no limit.
      { send: [[["database", "orders"]]], overall: "OK", statuses: [["OK", null, 0]] },
    ],
  },
  {
    name: "2: nested lists, and several descriptors in one request (over if any is)",
    yaml: `
domain: messaging
descriptors:
  - key: message_type
    value: marketing
    descriptors:
      - key: to_number
        rate_limit: { unit: day, requests_per_unit: 5 }
  - key: to_number
    rate_limit: { unit: day, requests_per_unit: 100 }`,
    steps: [
      {
        send: [
          [
            ["message_type", "marketing"],
            ["to_number", "2061111111"],
          ],
          [["to_number", "2061111111"]],
        ],
        hits: 5,
        overall: "OK",
        statuses: [
          ["OK", "5/DAY", 0],
          ["OK", "100/DAY", 95],
        ],
      },
      {
        send: [
          [
            ["message_type", "marketing"],
            ["to_number", "2061111111"],
          ],
          [["to_number", "2061111111"]],
        ],
        overall: "OVER_LIMIT",
        // All or nothing: the denied request took nothing from the 100 a day.
        statuses: [
          ["OVER_LIMIT", "5/DAY", 0],
          ["OK", "100/DAY", 95],
        ],
      },
      // Each number has its own limits (a key without a value limits each value apart).
      {
        send: [
          [
            ["message_type", "marketing"],
            ["to_number", "2062222222"],
          ],
        ],
        overall: "OK",
        statuses: [["OK", "5/DAY", 4]],
      },
      { send: [[["to_number", "2061111111"]]], overall: "OK", statuses: [["OK", "100/DAY", 94]] },
      // The placeholder level has no limit of its own.
      { send: [[["message_type", "marketing"]]], overall: "OK", statuses: [["OK", null, 0]] },
    ],
  },
  {
    name: "3: the most specific match wins (key and value before key alone)",
    yaml: `
domain: edge_proxy_per_ip
descriptors:
  - key: remote_address
    rate_limit: { unit: second, requests_per_unit: 10 }
  - key: remote_address
    value: 50.0.0.5
    rate_limit: { unit: second, requests_per_unit: 0 }`,
    steps: [
      { send: [[["remote_address", "50.0.0.1"]]], overall: "OK", statuses: [["OK", "10/SECOND", 9]] },
      { send: [[["remote_address", "50.0.0.2"]]], hits: 10, overall: "OK", statuses: [["OK", "10/SECOND", 0]] },
      { send: [[["remote_address", "50.0.0.5"]]], overall: "OVER_LIMIT", statuses: [["OVER_LIMIT", "0/SECOND", 0]] },
      // A blocked descriptor makes the whole request over limit, so the other one takes nothing.
      {
        send: [[["remote_address", "50.0.0.5"]], [["remote_address", "50.0.0.1"]]],
        overall: "OVER_LIMIT",
        statuses: [
          ["OVER_LIMIT", "0/SECOND", 0],
          ["OK", "10/SECOND", 9],
        ],
      },
    ],
  },
  {
    name: "4: a request descriptor's depth must match the config's nesting",
    yaml: `
domain: example4
descriptors:
  - key: key
    value: value
    rate_limit: { requests_per_unit: 300, unit: second }
  - key: nested
    value: value
    descriptors:
      - key: subkey
        rate_limit: { requests_per_unit: 300, unit: second }`,
    steps: [
      {
        send: [
          [
            ["key", "value"],
            ["subkey", "subvalue"],
          ],
        ],
        overall: "OK",
        statuses: [["OK", null, 0]],
      },
      { send: [[["key", "value"]]], overall: "OK", statuses: [["OK", "300/SECOND", 299]] },
      {
        send: [
          [
            ["nested", "value"],
            ["subkey", "subvalue"],
          ],
        ],
        overall: "OK",
        statuses: [["OK", "300/SECOND", 299]],
      },
      { send: [[["nested", "value"]]], overall: "OK", statuses: [["OK", null, 0]] },
    ],
  },
  {
    name: "5: unlimited answers OK with the largest remaining",
    yaml: `
domain: internal
descriptors:
  - key: ldap
    rate_limit: { unlimited: true }
  - key: azure
    rate_limit: { unit: minute, requests_per_unit: 100 }`,
    steps: [
      { send: [[["ldap", "x"]]], hits: 1000, overall: "OK", statuses: [["OK", null, MAX_UINT32]] },
      { send: [[["azure", "x"]]], overall: "OK", statuses: [["OK", "100/MINUTE", 99]] },
    ],
  },
  {
    name: "6: shadow mode answers OK whatever the count",
    yaml: `
domain: example6
descriptors:
  - key: service
    descriptors:
      - key: user
        value: user-a
        rate_limit: { requests_per_unit: 10, unit: second }
        shadow_mode: true
      - key: user
        value: user-b
        rate_limit: { requests_per_unit: 20, unit: second }`,
    steps: [
      {
        send: [
          [
            ["service", "auth-service"],
            ["user", "user-a"],
          ],
        ],
        hits: 10,
        overall: "OK",
        statuses: [["OK", "10/SECOND", 0]],
      },
      {
        send: [
          [
            ["service", "auth-service"],
            ["user", "user-a"],
          ],
        ],
        overall: "OK",
        statuses: [["OK", "10/SECOND", 0]],
      },
      {
        send: [
          [
            ["service", "auth-service"],
            ["user", "user-b"],
          ],
        ],
        hits: 20,
        overall: "OK",
        statuses: [["OK", "20/SECOND", 0]],
      },
      {
        send: [
          [
            ["service", "auth-service"],
            ["user", "user-b"],
          ],
        ],
        overall: "OVER_LIMIT",
        statuses: [["OVER_LIMIT", "20/SECOND", 0]],
      },
      // A refilling bucket: 50 ms later one of user-b's 20 per second is back, not all 20.
      {
        after: 50_000,
        send: [
          [
            ["service", "auth-service"],
            ["user", "user-b"],
          ],
        ],
        overall: "OK",
        statuses: [["OK", "20/SECOND", 0]],
      },
    ],
  },
  {
    name: "7: replaces drops the replaced limit when both match",
    yaml: `
domain: example7
descriptors:
  - key: key_1
    value: value_1
    descriptors:
      - key: user
        value: bkthomps
        rate_limit: { name: specific_limit, requests_per_unit: 5, unit: second }
  - key: key_2
    value: value_2
    descriptors:
      - key: user
        value: bkthomps
        rate_limit:
          replaces: [{ name: specific_limit }]
          requests_per_unit: 10
          unit: second`,
    steps: [
      {
        send: [
          [
            ["key_1", "value_1"],
            ["user", "bkthomps"],
          ],
        ],
        overall: "OK",
        statuses: [["OK", "5/SECOND", 4]],
      },
      {
        send: [
          [
            ["key_1", "value_1"],
            ["user", "bkthomps"],
          ],
          [
            ["key_2", "value_2"],
            ["user", "bkthomps"],
          ],
        ],
        overall: "OK",
        // The 5 per second is not evaluated (and not charged): it still has 4.
        statuses: [
          ["OK", null, 0],
          ["OK", "10/SECOND", 9],
        ],
      },
      {
        send: [
          [
            ["key_1", "value_1"],
            ["user", "bkthomps"],
          ],
        ],
        overall: "OK",
        statuses: [["OK", "5/SECOND", 3]],
      },
    ],
  },
];

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
