// npm run sim [-- --json] [--seed N] [--scenario NAME] [--scale X]
// Runs every acceptance scenario of docs/design.md (section 6) on the seeded simulator and
// prints scenario, measured figure, bound, pass/fail; exits non-zero if any fails, printing the
// seed so the run can be replayed with --seed.

import type { Row } from "./figures.ts";
import { SCENARIOS } from "./scenarios.ts";

interface Args {
  json: boolean;
  seed: number;
  scenario: string | undefined;
  scale: number;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { json: false, seed: 1, scenario: undefined, scale: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--json") args.json = true;
    else if (a === "--seed") args.seed = Number(next());
    else if (a === "--scenario") args.scenario = next();
    else if (a === "--scale") args.scale = Number(next());
    else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isSafeInteger(args.seed)) throw new Error("--seed must be an integer");
  if (!(args.scale > 0 && args.scale <= 1)) throw new Error("--scale must be in (0, 1]");
  return args;
}

function table(rows: readonly Row[]): string {
  const head = ["scenario", "figure", "bound", "unit", "pass"];
  const body = rows.map((r) => [r.scenario, String(r.figure), String(r.bound), r.unit, r.pass ? "PASS" : "FAIL"]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 1 || i === 2 ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number))).join("  ");
  const out = [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)];
  return out.join("\n");
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const chosen = SCENARIOS.filter((s) => args.scenario === undefined || s.name === args.scenario);
  if (chosen.length === 0) throw new Error(`no scenario ${args.scenario}; known: ${SCENARIOS.map((s) => s.name).join(", ")}`);
  const rows: Row[] = [];
  for (const s of chosen) {
    const started = performance.now();
    let got: Row[];
    try {
      got = s.run(args.seed, args.scale);
    } catch (err) {
      got = [
        {
          scenario: s.name,
          figure: Number.NaN,
          bound: Number.NaN,
          unit: "",
          pass: false,
          detail: `threw: ${String(err)}`,
          seed: args.seed,
        },
      ];
    }
    rows.push(...got);
    if (!args.json) process.stderr.write(`${s.name}: ${((performance.now() - started) / 1000).toFixed(1)}s\n`);
  }
  const failed = rows.filter((r) => !r.pass);
  if (args.json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
  } else {
    process.stdout.write(`${table(rows)}\n\n`);
    for (const r of rows) if (r.detail !== "") process.stdout.write(`- ${r.scenario}: ${r.detail}\n`);
  }
  if (failed.length > 0) {
    process.stderr.write(
      `\n${failed.length} scenario(s) failed with seed ${args.seed}; replay: npm run sim -- --seed ${args.seed}${args.scenario ? ` --scenario ${args.scenario}` : ""}\n`,
    );
    process.exitCode = 1;
  }
}

try {
  main();
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 2;
}
