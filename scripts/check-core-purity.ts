// Keeps src/core pure: it may import only other files of src/core, and may not read a clock,
// draw a random number, start a timer or touch the process. Run in CI (`npm run check:core`).

import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const core = join(root, "src/core");

const FORBIDDEN: [RegExp, string][] = [
  [/\bDate\.now\s*\(|\bnew Date\s*\(/, "reads the wall clock (pass nowUs in)"],
  [/\bperformance\.now\s*\(|\bprocess\.hrtime/, "reads a clock (pass nowUs in)"],
  [/\bMath\.random\s*\(|\bcrypto\.getRandomValues|\brandomUUID\s*\(/, "draws randomness (pass a seed or an id in)"],
  [/\bset(Timeout|Interval|Immediate)\s*\(/, "starts a timer (the edge owns timers)"],
  [/\bprocess\./, "touches the process"],
  [/\brequire\s*\(/, "uses require"],
];

// A module-level `let`, or a module-level array or collection, is state shared by every replica
// in the process (a memo, a counter) that no replica owns and no test resets: not pure either.
// A line may keep one when it says why on the line itself (`// module state: why`), e.g. a memo
// keyed by an immutable object, which no replica can observe.
const MODULE_STATE_WHY = /\/\/ module state: \S/;
const MODULE_STATE = /^(?:export\s+)?(?:let|var)\s|^(?:export\s+)?const\s+\w+\s*(?::[^=]+)?=\s*(?:\[|new\s+(?:Map|Set|WeakMap|Array)\b)/;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith(".ts") ? [path] : [];
  });
}

const problems: string[] = [];
for (const file of files(core)) {
  const rel = relative(root, file);
  const lines = readFileSync(file, "utf8").split("\n");
  lines.forEach((line, i) => {
    const code = line.replace(/\/\/.*$/, "");
    const imported = /\bfrom\s+["']([^"']+)["']|\bimport\s*\(\s*["']([^"']+)["']/.exec(code);
    const spec = imported?.[1] ?? imported?.[2];
    if (spec !== undefined) {
      const target = spec.startsWith(".") ? resolve(dirname(file), spec) : spec;
      if (!target.startsWith(core)) problems.push(`${rel}:${i + 1}: imports "${spec}" from outside src/core`);
    }
    for (const [pattern, why] of FORBIDDEN) if (pattern.test(code)) problems.push(`${rel}:${i + 1}: ${why}: ${line.trim()}`);
    if (MODULE_STATE.test(code) && !/\bas const\b|Object\.freeze\(|^[^=]*:\s*Readonly/.test(code) && !MODULE_STATE_WHY.test(line))
      problems.push(
        `${rel}:${i + 1}: keeps mutable state at module level (shared by every replica in the process; the replica owns its state): ${line.trim()}`,
      );
  });
}

// The replica owns its state: outside src/core, src/ reaches it only through Replica's methods.
// The state is a private field (#s), so the language keeps the edge out of it; what is left to
// check is the core's own way in. Flagged: any mention of `replicaStateOf` (the module-internal
// accessor core modules such as snapshot.ts use), any import from test/ (where the test-only
// accessor test/support/replica-state.ts lives), and value imports of src/core/crdt modules
// other than index.ts (its internals act on the state).
const edgeFiles = files(join(root, "src")).filter((f) => !f.startsWith(core) && !f.startsWith(join(root, "src/gen")));
for (const file of edgeFiles) {
  const rel = relative(root, file);
  readFileSync(file, "utf8")
    .split("\n")
    .forEach((line, i) => {
      const code = line.replace(/\/\/.*$/, "");
      if (/\breplicaStateOf\b/.test(code))
        problems.push(`${rel}:${i + 1}: reaches into a replica's state (use Replica's methods): ${line.trim()}`);
      if (/\bfrom\s+["'][^"']*\/test\//.test(code))
        problems.push(`${rel}:${i + 1}: imports from test/ (test-only helpers such as the replica-state accessor): ${line.trim()}`);
      const internal = /^\s*import\s+(?!type\b)[^;]*from\s+["'][^"']*core\/crdt\/(?!index\.ts)[^"']+["']/.exec(code);
      if (internal !== null) problems.push(`${rel}:${i + 1}: imports a core/crdt internal (use core/crdt/index.ts): ${line.trim()}`);
    });
}

if (problems.length > 0) {
  process.stderr.write(`src/core is not pure:\n  ${problems.join("\n  ")}\n`);
  process.exit(1);
}
process.stdout.write(
  `src/core is pure (${files(core).length} files checked); no edge module reaches into replica state (${edgeFiles.length} files)\n`,
);
