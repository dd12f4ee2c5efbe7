#!/usr/bin/env node
// Entry point. Runs the build (dist/, made by `npm run build`) when it is there and no source
// file is newer than it; otherwise, in a checkout, the TypeScript sources through tsx (a dev
// dependency), so an edit is never shadowed by an old build. The container image has no src/,
// so there it is always the build, and neither tsx nor TypeScript is needed at run time.

import { existsSync, readdirSync, statSync } from "node:fs";

const dist = new URL("../dist/tokenmesh.mjs", import.meta.url);
const stamp = new URL("../dist/build-info.json", import.meta.url);
const src = new URL("../src/", import.meta.url);

/** The newest modification time under src/, or 0 when there is no src/ (an installed build). */
function newestSource() {
  if (!existsSync(src)) return 0;
  let newest = 0;
  for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".ts")) continue;
    newest = Math.max(newest, statSync(`${entry.parentPath ?? entry.path}/${entry.name}`).mtimeMs);
  }
  return newest;
}

async function load() {
  if (existsSync(stamp) && newestSource() <= statSync(stamp).mtimeMs) return import(dist.href);
  if (!existsSync(src)) {
    process.stderr.write("tokenmesh: no build in dist/ and no sources: run `npm run build`\n");
    process.exit(2);
  }
  if (existsSync(stamp) && process.stderr.isTTY) {
    process.stderr.write("tokenmesh: src/ is newer than dist/: running the sources (npm run build makes start-up fast again)\n");
  }
  let register;
  try {
    ({ register } = await import("tsx/esm/api"));
  } catch {
    process.stderr.write("tokenmesh: running from the sources needs tsx (npm ci), or build first: npm run build\n");
    process.exit(2);
  }
  register();
  return import(new URL("cli/main.ts", src).href);
}

const { main } = await load();
process.exitCode = await main(process.argv.slice(2));
