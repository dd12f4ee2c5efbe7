// Command-line options of `npm run bench`, validated once.

import { parseArgs } from "node:util";
import type { BenchSettings } from "./scenario.ts";

export interface BenchOptions {
  readonly settings: BenchSettings;
  /** Scenario ids to run; all when empty. */
  readonly only: readonly string[];
  readonly forceNodeDriver: boolean;
  readonly install: boolean;
  readonly out: string;
}

export const USAGE = `usage: npm run bench -- [--quick] [--rounds N] [--only ID,ID] [--cpu-prof DIR] [--node-driver] [--no-install] [--out FILE]
  --quick        short runs (about 3 minutes in all)
  --rounds N     alternating rounds per comparison (default 3 quick, 5 full; at least 3)
  --only IDS     run only these scenarios (throughput, versus-redis, batch, tail-latency, memory-and-keys, replication, scaling, doors, user-level, start-up)
  --cpu-prof DIR write V8 CPU profiles of every tokenmesh process into DIR
  --node-driver  never use h2load
  --no-install   do not apt-get install missing tools
  --out FILE     JSON output (default bench/results/latest.json)`;

export function parseOptions(argv: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: "boolean", default: false },
      rounds: { type: "string" },
      only: { type: "string" },
      "cpu-prof": { type: "string" },
      "node-driver": { type: "boolean", default: false },
      "no-install": { type: "boolean", default: false },
      out: { type: "string" },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const quick = values.quick;
  const rounds = values.rounds === undefined ? (quick ? 3 : 5) : Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 3 || rounds > 20)
    throw new TypeError(`--rounds must be an integer 3..20 (medians need at least 3), got ${values.rounds}`);
  return {
    settings: {
      quick,
      rounds,
      runS: quick ? 1.5 : 8,
      warmupS: quick ? 0.5 : 2,
      lowLoadS: quick ? 1 : 5,
      cpuProfDir: values["cpu-prof"],
      seed: 20_261_123,
    },
    only: values.only === undefined ? [] : values.only.split(",").map((s) => s.trim()),
    forceNodeDriver: values["node-driver"],
    install: !values["no-install"],
    out: values.out ?? new URL("../results/latest.json", import.meta.url).pathname,
  };
}
