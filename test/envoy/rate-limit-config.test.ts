// envoyproxy/ratelimit's config format as tokenmesh reads it: every bad document is refused at
// start-up with its source and path, and a directory of YAML files loads like inline domains.

import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfigFile, resolveConfig } from "../../src/config/load.ts";

const policies = { api: { capacity: 1, refill: 1, per: "1s" } };
const problemsOf = (domains: unknown[]): string[] => {
  try {
    resolveConfig({ policies, envoy: { domains } }, "test");
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
};
const limit = (rate_limit: unknown) => ({ domain: "d", descriptors: [{ key: "k", rate_limit }] });

const cases: { name: string; domains: unknown[]; problem: string }[] = [
  {
    name: "no domain",
    domains: [{ descriptors: [] }],
    problem: "envoy.domains[0]: domain: Invalid input: expected string, received undefined",
  },
  {
    name: "an unknown key",
    domains: [{ domain: "d", descriptors: [{ key: "k", rate: 1 }] }],
    problem: 'envoy.domains[0]: descriptors.0: Unrecognized key: "rate"',
  },
  {
    name: "an unknown unit",
    domains: [limit({ unit: "fortnight", requests_per_unit: 1 })],
    problem: "envoy.domains[0]: descriptors.0.rate_limit.unit: must be second, minute, hour, day, month or year",
  },
  {
    name: "no unit",
    domains: [limit({ requests_per_unit: 1 })],
    problem: "envoy.domains[0]: descriptors.0.rate_limit.unit: is required (or unlimited: true)",
  },
  {
    name: "no requests_per_unit",
    domains: [limit({ unit: "second" })],
    problem: "envoy.domains[0]: descriptors.0.rate_limit.requests_per_unit: is required (or unlimited: true)",
  },
  {
    name: "a unit with unlimited",
    domains: [limit({ unlimited: true, unit: "second" })],
    problem: "envoy.domains[0]: descriptors.0.rate_limit.unit: must not be set when unlimited",
  },
  {
    name: "a limit replacing itself",
    domains: [limit({ name: "x", unit: "second", requests_per_unit: 1, replaces: [{ name: "x" }] })],
    problem: "envoy.domains[0]: descriptors.0.rate_limit.replaces.0.name: must not name this limit itself",
  },
  {
    name: "a wildcard value",
    domains: [{ domain: "d", descriptors: [{ key: "k", value: "a*" }] }],
    problem: "envoy.domains[0]: descriptors.0.value: wildcard values (*) are not supported by tokenmesh",
  },
  {
    name: "the same key and value twice at one level",
    domains: [
      {
        domain: "d",
        descriptors: [
          { key: "k", value: "v" },
          { key: "k", value: "v" },
        ],
      },
    ],
    problem: 'envoy.domains[0].descriptors[1]: duplicate descriptor "d.k_v" (another entry at this level has the same key and value)',
  },
  {
    name: "one domain in two documents",
    domains: [
      { domain: "d", descriptors: [] },
      { domain: "d", descriptors: [] },
    ],
    problem: 'envoy.domains[1]: domain "d" is already defined by envoy.domains[0]',
  },
];

describe("envoy domains in the config", () => {
  for (const c of cases) {
    it(`refuses ${c.name}`, () => {
      expect(problemsOf(c.domains)).toContain(c.problem);
    });
  }

  it("accepts ratelimit's metric-only keys and its upper-case units", () => {
    expect(
      problemsOf([
        {
          domain: "d",
          descriptors: [{ key: "k", detailed_metric: true, value_to_metric: true, rate_limit: { unit: "MINUTE", requests_per_unit: 3 } }],
        },
      ]),
    ).toEqual([]);
  });

  it("reads envoy.configDirectory relative to the config file, one domain per YAML file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tokenmesh-rls-"));
    const rl = join(dir, "rl");
    mkdirSync(rl);
    writeFileSync(join(rl, "a.yaml"), "domain: a\ndescriptors:\n  - key: k\n    rate_limit: { unit: second, requests_per_unit: 2 }\n");
    writeFileSync(join(rl, "b.yml"), "domain: b\ndescriptors: []\n");
    writeFileSync(join(rl, "notes.txt"), "not a config");
    writeFileSync(join(dir, "tokenmesh.yaml"), "policies:\n  api: { capacity: 1, refill: 1, per: 1s }\nenvoy:\n  configDirectory: rl\n");
    const config = await loadConfigFile(join(dir, "tokenmesh.yaml"), {});
    expect([...config.envoy.domains.keys()]).toEqual(["a", "b"]);
    writeFileSync(join(rl, "c.yaml"), "domain: c\ndescriptors: [ { key: k, rate_limit: { unit: week, requests_per_unit: 1 } } ]\n");
    await expect(loadConfigFile(join(dir, "tokenmesh.yaml"), {})).rejects.toThrow(
      `${join(rl, "c.yaml")}: descriptors.0.rate_limit.unit: must be second, minute, hour, day, month or year`,
    );
  });
});
