// Every metric the dashboard and the alert rules read exists on a running mesh replica's
// /metrics (real processes, meshed, before any traffic), with a sample, not just a HELP line.
// tokenmesh_build_info names the version and commit.

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REJECT_REASONS } from "../../src/mesh/mesh-stats.ts";
import { type ProcessMesh, startProcessMesh } from "../support/mesh-processes.ts";
import { REPO_ROOT } from "../support/process.ts";
import { dashboardQueries, metricNames, ruleQueries } from "./shipped-queries.ts";

/** Sample names (with their label sets) on an exposition page. */
function samples(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? /.exec(line);
    if (m === null) continue;
    const list = out.get(m[1] as string) ?? [];
    list.push(m[2] ?? "");
    out.set(m[1] as string, list);
  }
  return out;
}

describe("metrics used by the dashboard and the alert rules", () => {
  let mesh: ProcessMesh;
  let page: Map<string, string[]>;
  beforeAll(async () => {
    mesh = await startProcessMesh({ size: 2, policies: { login: { capacity: 5, refill: 1, per: "10s" } } });
    await mesh.fullyConnected();
    const metricsPort = mesh.replicas[0]?.metricsPort;
    page = samples(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text());
  }, 60_000);
  afterAll(async () => {
    await mesh?.close();
  });

  it("all exist on a mesh replica's /metrics from start-up", () => {
    const used = metricNames([...dashboardQueries(), ...ruleQueries()]);
    expect(used.size).toBeGreaterThan(15);
    const missing = [...used].filter((n) => !page.has(n));
    expect(missing).toEqual([]);
  });

  it("include the config-reload and snapshot metrics the dashboard shows", () => {
    const used = metricNames(dashboardQueries());
    for (const n of ["tokenmesh_config_reloads_total", "tokenmesh_snapshot_age_seconds"]) {
      expect(used.has(n), n).toBe(true);
      expect(page.has(n), n).toBe(true);
    }
  });

  it("exports the label series alerts rely on at 0 before anything happened", () => {
    expect(page.get("tokenmesh_decisions_total")).toEqual(['{policy="login",result="allowed"}', '{policy="login",result="denied"}']);
    expect(page.get("tokenmesh_evictions_total")).toEqual(['{kind="safe"}', '{kind="unsafe"}']);
    expect(REJECT_REASONS).toEqual(expect.arrayContaining(["handshake", "invalid_delta", "protocol", "key_flood"]));
    expect(page.get("tokenmesh_peer_rejected_total")).toEqual(REJECT_REASONS.map((r) => `{reason="${r}"}`));
    expect(page.get("tokenmesh_peer_keys_ignored_total")).toEqual(['{reason="removed_policy"}']);
    expect(page.get("tokenmesh_request_duration_seconds_count")).toEqual([
      '{grpc_service="tokenmesh.v1.RateLimiter",grpc_method="Consume",grpc_code="OK"}',
      '{grpc_service="tokenmesh.v1.RateLimiter",grpc_method="Query",grpc_code="OK"}',
    ]);
  });

  it("names the version and commit in tokenmesh_build_info", () => {
    const version = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;
    const commit =
      process.env.TOKENMESH_COMMIT || execFileSync("git", ["rev-parse", "--short=12", "HEAD"], { cwd: REPO_ROOT }).toString().trim();
    expect(page.get("tokenmesh_build_info")).toEqual([`{version="${version}",commit="${commit}"}`]);
  });
});
