// The bench's output: one row per figure, printed as a table and written as JSON.
//
// A row with a target passes or fails; a row with `pass: null` was not measured, has no target
// (informational), or has a figure but no verdict (too few valid rounds: its note says why). A miss is printed like a pass, never dropped.

import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export interface Row {
  readonly name: string;
  /** tokenmesh's figure (median over rounds), or null when not measured. */
  readonly value: number | null;
  readonly unit: string;
  /** The baseline's figure in the same unit, measured in the same run. */
  readonly baseline: number | null;
  readonly baselineName: string | null;
  /** value / baseline */
  readonly ratio: number | null;
  /** The bound on `ratio` (or on `value` when there is no baseline), e.g. ">= 0.9". */
  readonly target: string | null;
  readonly pass: boolean | null;
  /** Rounds, drivers, spread between rounds, or why the row was not measured. */
  readonly note: string;
}

export type Bound = { op: ">=" | "<="; bound: number };

export function check(x: number | null, b: Bound): boolean | null {
  if (x === null || !Number.isFinite(x)) return null;
  return b.op === ">=" ? x >= b.bound : x <= b.bound;
}

/** Fewer valid rounds than this give a figure but no verdict: one round cannot show drift. */
export const MIN_ROUNDS = 3;

/** A row comparing tokenmesh with a baseline: the bound applies to the ratio. */
export function ratioRow(r: {
  name: string;
  unit: string;
  value: number;
  baseline: number;
  baselineName: string;
  bound: Bound;
  note: string;
  /** The fewest valid rounds behind either side; under MIN_ROUNDS the row gets no verdict. */
  rounds?: number;
}): Row {
  const ratio = r.value / r.baseline;
  const tooFew = r.rounds !== undefined && r.rounds < MIN_ROUNDS;
  // A difference (added latency) can come out at or below zero when the machine's noise is larger
  // than the figure: a ratio to it is meaningless, and a negative one would "pass" any <= bound.
  if (!(r.baseline > 0) || !(r.value >= 0))
    return {
      name: r.name,
      value: r.value,
      unit: r.unit,
      baseline: r.baseline,
      baselineName: r.baselineName,
      ratio: null,
      target: `${r.bound.op} ${r.bound.bound}x ${r.baselineName}`,
      pass: null,
      note: `NO VERDICT: ${r.baseline > 0 ? "this figure" : "the baseline"} came out ${r.baseline > 0 ? r.value.toFixed(1) : r.baseline.toFixed(1)} ${r.unit}, not above zero (noise larger than the figure); ${r.note}`,
    };
  return {
    name: r.name,
    value: r.value,
    unit: r.unit,
    baseline: r.baseline,
    baselineName: r.baselineName,
    ratio,
    target: `${r.bound.op} ${r.bound.bound}x ${r.baselineName}`,
    pass: tooFew ? null : check(ratio, r.bound),
    note: tooFew ? `NO VERDICT: only ${r.rounds} valid round(s); ${r.note}` : r.note,
  };
}

export function notMeasured(name: string, unit: string, target: string, why: string): Row {
  return { name, value: null, unit, baseline: null, baselineName: null, ratio: null, target, pass: null, note: `not measured: ${why}` };
}

function fmt(x: number | null): string {
  if (x === null || !Number.isFinite(x)) return "-";
  const a = Math.abs(x);
  if (a >= 100) return Math.round(x).toLocaleString("en-US");
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

export function formatTable(rows: readonly Row[]): string {
  const header = ["figure", "tokenmesh", "unit", "baseline", "ratio", "target", "result"];
  const body = rows.map((r) => [
    r.name,
    fmt(r.value),
    r.unit,
    r.baseline === null ? "-" : `${fmt(r.baseline)} (${r.baselineName})`,
    r.ratio === null ? "-" : `${fmt(r.ratio)}x`,
    r.target ?? "-",
    // A figure with a target but no verdict (too few valid rounds, a failed method check) says
    // so: "info" is for rows that have no target at all.
    r.pass === null ? (r.value === null ? "not measured" : r.target === null ? "info" : "no verdict") : r.pass ? "PASS" : "MISS",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(" | ")} |`;
  const out = [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...body.map(line)];
  const notes = rows.map((r, i) => `${i + 1}. ${r.name}: ${r.note}`);
  return `${out.join("\n")}\n\nNotes:\n${notes.join("\n")}\n`;
}

export function writeJson(path: string, rows: readonly Row[]): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(rows, null, 2)}\n`);
}
