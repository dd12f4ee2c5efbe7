// Entry of the Node load driver process: `node --import tsx driver/main.ts SPEC_JSON`.
// Prints one line `RESULT {...}` so the bench can tell it from any warning on stdout.

import { runLoad } from "./http2-load.ts";
import type { DriverSpec } from "./spec.ts";

const arg = process.argv[2];
if (arg === undefined) {
  process.stderr.write("usage: main.ts SPEC_JSON\n");
  process.exit(2);
}
const result = await runLoad(JSON.parse(arg) as DriverSpec);
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
process.exit(0);
