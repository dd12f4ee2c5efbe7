// `npm run build`: compiles src/ into dist/, the JavaScript that bin/tokenmesh.mjs runs when it
// is there (the container image ships only dist/, bin/ and the production node_modules).
//
// A bundle (esbuild) rather than tsc's file-per-module output: loading the client path from
// node_modules as hundreds of small ESM files took ~200 ms, the bundled chunk ~85 ms, which is
// the difference between meeting and missing the 0.3 s target for a CLI call
// (bench/scenarios/start-up.ts measures it). Code splitting keeps the commands apart: `consume`
// loads the gRPC client chunk, never the server, pino or prom-client.
//
// pino stays outside the bundle, loaded from node_modules at run time: its transports run in
// worker threads that load their targets by module name, which a bundle cannot serve.
//
// Plain JavaScript so that it needs nothing but esbuild: type checking is `npm run typecheck`.

import { execFileSync } from "node:child_process";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = `${root}dist`;
// Built beside dist/ and swapped in whole, so a CLI started meanwhile never sees half a build.
const staging = `${root}dist.partial-${process.pid}`;

const { version } = JSON.parse(readFileSync(`${root}package.json`, "utf8"));

/** The commit being built: TOKENMESH_COMMIT (a container build has no .git), else git, else unknown. */
function commit() {
  if (process.env.TOKENMESH_COMMIT) return process.env.TOKENMESH_COMMIT;
  try {
    return execFileSync("git", ["rev-parse", "--short=12", "HEAD"], {
      cwd: root,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return "unknown";
  }
}

const started = performance.now();
try {
  await build({
    absWorkingDir: root,
    entryPoints: { tokenmesh: "src/cli/main.ts" },
    outdir: staging,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    outExtension: { ".js": ".mjs" },
    chunkNames: "chunks/[name]-[hash]",
    external: ["pino"],
    // Bundled CommonJS packages call require() for Node's built-ins; ESM has no require of its own.
    banner: {
      js: 'import { createRequire as __tokenmeshCreateRequire } from "node:module";\nconst require = __tokenmeshCreateRequire(import.meta.url);',
    },
    sourcemap: "linked",
    sourcesContent: false,
    legalComments: "linked",
    logLevel: "warning",
  });
  // The build's identity, and the stamp bin/tokenmesh.mjs compares the sources' times with.
  writeFileSync(
    `${staging}/build-info.json`,
    `${JSON.stringify({ version, commit: commit(), builtAt: new Date().toISOString() }, null, 2)}\n`,
  );
  rmSync(dist, { recursive: true, force: true });
  renameSync(staging, dist);
} finally {
  rmSync(staging, { recursive: true, force: true });
}
process.stdout.write(`built dist/ in ${Math.round(performance.now() - started)} ms\n`);
