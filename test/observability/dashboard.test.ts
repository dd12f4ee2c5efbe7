// The Grafana dashboard is importable as shipped: a data source variable instead of a fixed uid,
// unique panel ids on a grid that does not overlap, every query parsed by Prometheus's own parser
// (promtool), and a panel for each thing an operator watches.

import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { DASHBOARD_FILE, dashboard, dashboardQueries, expandGrafanaVariables, type Panel } from "./shipped-queries.ts";

const run = promisify(execFile);
const d = dashboard();
const panels = d.panels.filter((p) => p.type !== "row");
/** Grafana's reference to the `datasource` variable, spelled as it appears in the JSON. */
const DATASOURCE_VARIABLE = ["$", "{datasource}"].join("");

describe("the Grafana dashboard", () => {
  it("takes its Prometheus data source from a template variable, never a fixed uid", () => {
    const ds = d.templating.list.find((v) => v.type === "datasource");
    expect(ds).toMatchObject({ name: "datasource", query: "prometheus" });
    for (const p of panels) {
      expect(p.datasource, p.title).toEqual({ type: "prometheus", uid: DATASOURCE_VARIABLE });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? []) expect(t.datasource?.uid, p.title).toBe(DATASOURCE_VARIABLE);
    }
    for (const v of d.templating.list.filter((x) => x.type === "query")) expect(v.datasource?.uid, v.name).toBe(DATASOURCE_VARIABLE);
    // No uid of anybody's Grafana is baked in anywhere.
    const uids = [...readFileSync(DASHBOARD_FILE, "utf8").matchAll(/"uid":\s*"([^"]*)"/g)].map((m) => m[1]);
    expect(new Set(uids)).toEqual(new Set(["tokenmesh", DATASOURCE_VARIABLE, "-- Grafana --"]));
  });

  it("has unique panel ids on a 24-column grid without overlaps", () => {
    const ids = d.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Map<string, string>();
    for (const p of d.panels) {
      const { x, y, w, h } = p.gridPos;
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          const taken = cells.get(`${i},${j}`);
          expect(taken, `${p.title} overlaps ${taken}`).toBeUndefined();
          cells.set(`${i},${j}`, p.title);
        }
      }
    }
  });

  it("has queries that Prometheus parses", async () => {
    const queries = dashboardQueries(d).filter((q) => !q.expr.startsWith("label_values("));
    const dir = mkdtempSync(join(tmpdir(), "tokenmesh-dashboard-"));
    const file = join(dir, "queries.yaml");
    const rules = queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: expandGrafanaVariables(q.expr) }));
    writeFileSync(file, stringify({ groups: [{ name: "dashboard", rules }] }));
    const { stdout } = await run("promtool", ["check", "rules", file]);
    expect(stdout).toContain(`SUCCESS: ${queries.length} rules found`);
  });

  it("has a panel for each thing an operator watches", () => {
    const find = (what: string, test: (expr: string, p: Panel) => boolean) => {
      const hit = panels.find((p) => (p.targets ?? []).some((t) => test(t.expr, p)));
      expect(hit, what).toBeDefined();
    };
    find("decisions allowed and denied per policy", (e) => /sum by \(policy, result\) \(rate\(tokenmesh_decisions_total/.test(e));
    find("denial ratio per policy", (e) => e.includes('result="denied"') && e.includes(" / ") && e.includes("by (policy)"));
    for (const q of ["0.5", "0.99"]) {
      find(
        `request latency p${q}`,
        (e) => e.startsWith(`histogram_quantile(${q},`) && e.includes("tokenmesh_request_duration_seconds_bucket"),
      );
    }
    find("replication lag", (e) => e.startsWith("histogram_quantile(") && e.includes("tokenmesh_replication_lag_seconds_bucket"));
    find("peers connected", (e) => e.includes("tokenmesh_peers_connected"));
    find("keys held", (e) => e.startsWith("tokenmesh_keys{"));
    find("unsafe evictions", (e, p) => e.includes("tokenmesh_evictions_total") && /unsafe/.test(JSON.stringify(p)));
    find("rejected peer messages", (e) => e.includes("tokenmesh_peer_rejected_total"));
    find("process CPU", (e) => e.includes("rate(tokenmesh_process_cpu_seconds_total"));
    find("process memory", (e) => e.includes("tokenmesh_process_resident_memory_bytes"));
    find("config reloads", (e) => e.includes("tokenmesh_config_reloads_total"));
    find("snapshot age", (e) => e.includes("tokenmesh_snapshot_age_seconds"));
  });
});
