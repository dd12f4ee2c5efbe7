// The audit log of decisions: sampled per outcome with an injected random source, keys hashed
// unless asked otherwise, one line per bucket; written by a real server to a file; its config
// validated with messages naming the field; a path that cannot be opened stops start-up.

import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { ConfigError, resolveConfig } from "../../src/config/load.ts";
import type { AuditConfig } from "../../src/config/schema.ts";
import { makeRate } from "../../src/core/rate.ts";
import { bucketId, type ValidDecision } from "../../src/limiter/limiter.ts";
import { DecisionAudit } from "../../src/log/decision-audit.ts";
import { createLogger } from "../../src/log/logger.ts";
import { startServer } from "../../src/server/tokenmesh-server.ts";
import { startTestServer } from "../support/server.ts";
import { expectEveryLineNames, parseLines } from "./log-lines.ts";

const dir = mkdtempSync(join(tmpdir(), "tokenmesh-audit-"));
const rate = (() => {
  const r = makeRate({ capacity: 10, refillTokens: 1, refillPeriodUs: 1_000_000 });
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
})();
const decision = (...buckets: [string, string, number][]): ValidDecision =>
  buckets.map(([policy, key, cost]) => ({ policy, id: bucketId(policy, key), rate, cost }));

/** An audit writing to stdout through a logger whose output the test keeps. */
function capture(config: Partial<AuditConfig> & { sample?: Partial<AuditConfig["sample"]> }, random: () => number) {
  let text = "";
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  const log = createLogger({ node: "a1", level: "silent" }, sink);
  const full: AuditConfig = {
    destination: "stdout",
    key: config.key ?? "hash",
    sample: { allowed: config.sample?.allowed ?? 1, denied: config.sample?.denied ?? 1 },
  };
  const audit = new DecisionAudit(full, { node: "a1", log, random });
  return { audit, lines: () => parseLines(text) };
}

const sha = (key: string) => createHash("sha256").update(key).digest("hex").slice(0, 16);

describe("DecisionAudit", () => {
  it("samples allowed and denied decisions at their own rates", () => {
    const draws = [0.1, 0.7, 0.4, 0.9];
    let calls = 0;
    const { audit, lines } = capture({ sample: { allowed: 0.5, denied: 1 } }, () => draws[calls++ % draws.length] as number);
    for (let i = 0; i < 4; i++) audit.record(decision(["api", `k${i}`, 1]), true);
    expect(calls).toBe(4);
    for (let i = 0; i < 3; i++) audit.record(decision(["api", `d${i}`, 2]), false);
    expect(calls).toBe(4); // a rate of 1 draws nothing
    const got = lines().map((l) => [l.keyHash, l.outcome, l.cost, l.sample]);
    expect(got).toEqual([
      [sha("k0"), "allowed", 1, 0.5],
      [sha("k2"), "allowed", 1, 0.5],
      [sha("d0"), "denied", 2, 1],
      [sha("d1"), "denied", 2, 1],
      [sha("d2"), "denied", 2, 1],
    ]);
    // The audit is on even though the process log is silent; every line has the common shape.
    expectEveryLineNames(lines(), "a1");
    expect(lines().every((l) => l.log === "audit" && l.msg === "decision" && l.level === "info")).toBe(true);
  });

  it("writes nothing for a rate of 0, and one line per bucket with the decision's outcome", () => {
    const { audit, lines } = capture({ key: "plain", sample: { allowed: 0, denied: 1 } }, () => 0);
    audit.record(decision(["api", "quiet", 1]), true);
    audit.record(decision(["api", "tenant-1/user-9", 1], ["tenant", "tenant-1", 3]), false);
    expect(lines().map((l) => ({ policy: l.policy, key: l.key, cost: l.cost, outcome: l.outcome }))).toEqual([
      { policy: "api", key: "tenant-1/user-9", cost: 1, outcome: "denied" },
      { policy: "tenant", key: "tenant-1", cost: 3, outcome: "denied" },
    ]);
    expect(lines().some((l) => "keyHash" in l)).toBe(false);
  });
});

describe("the audit log of a running server", () => {
  it("appends consumed decisions to a file (creating its directory); queries are not audited", async () => {
    const file = join(dir, "nested", "audit.log");
    const t = await startTestServer({
      node: "audit-1",
      audit: { destination: file, sample: { allowed: 1 }, key: "plain" },
      policies: { login: { capacity: 2, refill: 1, per: "1h" } },
    });
    const d = { decisions: [{ buckets: [{ policy: "login", key: "bob" }] }] };
    for (let i = 0; i < 3; i++) await t.client.consume(d);
    await t.client.query(d);
    await t.close(); // flushes and closes the file
    const lines = parseLines(readFileSync(file, "utf8"));
    expectEveryLineNames(lines, "audit-1");
    expect(lines.map((l) => [l.policy, l.key, l.outcome])).toEqual([
      ["login", "bob", "allowed"],
      ["login", "bob", "allowed"],
      ["login", "bob", "denied"],
    ]);
  });

  it("refuses to start when the destination cannot be opened, naming the field and the reason", async () => {
    const notADir = join(dir, "plain-file");
    writeFileSync(notADir, "");
    const config = resolveConfig(
      {
        listen: "127.0.0.1:0",
        metricsListen: null,
        httpListen: null,
        dataDir: null,
        audit: { destination: join(notADir, "audit.log") },
        policies: { api: { capacity: 1, refill: 1, per: "1s" } },
      },
      "test",
    );
    await expect(startServer({ config, log: pino({ level: "silent" }) })).rejects.toThrow(
      /^audit\.destination: cannot open .*plain-file\/audit\.log for appending: E(EXIST|NOTDIR)/,
    );
  });
});

describe("audit and node config", () => {
  const base = { policies: { api: { capacity: 1, refill: 1, per: "1s" } } };
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["a sample rate above 1", { audit: { sample: { allowed: 2 } } }, /audit\.sample\.allowed: .*<=1/],
    ["a negative sample rate", { audit: { sample: { denied: -0.1 } } }, /audit\.sample\.denied: .*>=0/],
    ["an unknown key mode", { audit: { key: "md5" } }, /audit\.key: .*"hash"\|"plain"/],
    ["an empty destination", { audit: { destination: "" } }, /audit\.destination: /],
    ["an unknown audit field", { audit: { every: 10 } }, /audit: .*"every"/],
    ["a node name with a space", { node: "edge 1" }, /node: node names are 1-128 of/],
    [
      "a node name that differs from mesh.node",
      { node: "a", mesh: { node: "b", peerListen: "127.0.0.1:0", insecure: true } },
      /node: must equal mesh\.node \("b"\) when both are set/,
    ],
  ];
  it.each(cases)("refuses %s", (_what, extra, message) => {
    expect(() => resolveConfig({ ...base, ...extra }, "test.yaml")).toThrow(ConfigError);
    expect(() => resolveConfig({ ...base, ...extra }, "test.yaml")).toThrow(message);
  });

  it("defaults: audit off; when on, stdout, every denial, 1 in 100 allowed, hashed keys; node from mesh.node", () => {
    expect(resolveConfig(base, "t").audit).toBeUndefined();
    expect(resolveConfig({ ...base, audit: {} }, "t").audit).toEqual({
      destination: "stdout",
      sample: { allowed: 0.01, denied: 1 },
      key: "hash",
    });
    expect(resolveConfig({ ...base, mesh: { node: "m1", peerListen: "127.0.0.1:0", insecure: true } }, "t").node).toBe("m1");
    expect(resolveConfig({ ...base, node: "edge-1" }, "t").node).toBe("edge-1");
  });
});
