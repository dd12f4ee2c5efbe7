// The shipped alert rules pass `promtool check rules`, and `promtool test rules` runs their unit
// tests; every alert the operations guide promises exists and has a test that fires it and one
// where it stays quiet.

import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { REPO_ROOT } from "../support/process.ts";

const run = promisify(execFile);
const DIR = join(REPO_ROOT, "deploy", "prometheus");
const RULES = join(DIR, "tokenmesh-alerts.yaml");
const TESTS = join(DIR, "tokenmesh-alerts.test.yaml");

interface RuleFile {
  groups: { name: string; rules: { alert?: string; expr: string; for?: string; labels?: Record<string, string> }[] }[];
}
interface TestFile {
  tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

const rules = parse(readFileSync(RULES, "utf8")) as RuleFile;
const alerts = rules.groups.flatMap((g) => g.rules).filter((r) => r.alert !== undefined);

describe("alert rules", () => {
  it("pass promtool check rules", async () => {
    const { stdout } = await run("promtool", ["check", "rules", RULES]);
    expect(stdout).toContain(`SUCCESS: ${alerts.length} rules found`);
  });

  it("pass their promtool unit tests", async () => {
    const { stdout } = await run("promtool", ["test", "rules", TESTS], { cwd: DIR });
    expect(stdout).toContain("SUCCESS");
  });

  it("cover a peer down, replication lag, a replica not ready, unsafe evictions, rejected peer messages, denial ratio", () => {
    expect(alerts.map((a) => a.alert).sort()).toEqual([
      "TokenmeshHighDenialRatio",
      "TokenmeshPeerDown",
      "TokenmeshPeerMessagesRejected",
      "TokenmeshReplicaNotReady",
      "TokenmeshReplicationLagHigh",
      "TokenmeshUnsafeEvictions",
    ]);
    for (const a of alerts) expect(a.labels?.severity, a.alert).toMatch(/^(critical|warning|info)$/);
    const byName = new Map(alerts.map((a) => [a.alert, a]));
    expect(byName.get("TokenmeshReplicationLagHigh")?.expr).toMatch(/> 1$/);
    expect(byName.get("TokenmeshReplicaNotReady")?.for).toBe("1m");
  });

  it("each alert has a unit test where it fires and one where it stays quiet", () => {
    const cases = (parse(readFileSync(TESTS, "utf8")) as TestFile).tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const a of alerts) {
      const mine = cases.filter((c) => c.alertname === a.alert);
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${a.alert} fires in a test`,
      ).toBe(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${a.alert} stays quiet in a test`,
      ).toBe(true);
    }
  });
});
