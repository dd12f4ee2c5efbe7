// The PromQL that ships in deploy/: every query of the Grafana dashboard and every alert rule,
// and the tokenmesh metric names they read.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { REPO_ROOT } from "../support/process.ts";

export const DASHBOARD_FILE = join(REPO_ROOT, "deploy", "grafana", "tokenmesh-dashboard.json");
export const RULES_FILE = join(REPO_ROOT, "deploy", "prometheus", "tokenmesh-alerts.yaml");

export interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; refId: string; datasource?: { type: string; uid: string } }[];
}

export interface Dashboard {
  title: string;
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown; datasource?: { uid: string } }[] };
}

export const dashboard = (): Dashboard => JSON.parse(readFileSync(DASHBOARD_FILE, "utf8")) as Dashboard;

export function dashboardQueries(d: Dashboard = dashboard()): { title: string; expr: string }[] {
  const out = d.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr })));
  for (const v of d.templating.list) {
    const q = v.query as { query?: unknown } | string;
    const text = typeof q === "string" ? q : q.query;
    if (v.type === "query" && typeof text === "string") out.push({ title: `variable ${v.name}`, expr: text });
  }
  return out;
}

export function ruleQueries(): { title: string; expr: string }[] {
  const file = parse(readFileSync(RULES_FILE, "utf8")) as { groups: { rules: { alert?: string; record?: string; expr: string }[] }[] };
  return file.groups.flatMap((g) => g.rules.map((r) => ({ title: r.alert ?? r.record ?? "?", expr: r.expr })));
}

export function metricNames(queries: readonly { expr: string }[]): Set<string> {
  const names = new Set<string>();
  for (const { expr } of queries) for (const m of expr.matchAll(/\btokenmesh_[a-z0-9_]+/g)) names.add(m[0]);
  return names;
}

/** Grafana's variables replaced by what they expand to, so Prometheus's own parser can check a query. */
export function expandGrafanaVariables(expr: string): string {
  return expr
    .replaceAll("$__rate_interval", "1m")
    .replaceAll("$__interval", "1m")
    .replace(/\$(job|instance|policy)\b/g, ".*");
}
