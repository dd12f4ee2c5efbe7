// The build (dist/) for tests that run it as shipped: made with `npm run build` only when it is
// missing or older than a source file, by the rule bin/tokenmesh.mjs applies, so a test never
// swaps dist/ under processes that other test files started from it.

import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "./process.ts";

const STAMP = join(REPO_ROOT, "dist/build-info.json");

function newestSource(): number {
  let newest = 0;
  for (const entry of readdirSync(join(REPO_ROOT, "src"), { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith(".ts")) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/** Builds dist/ unless it is current; returns its path. */
export function ensureBuild(): string {
  if (!existsSync(STAMP) || statSync(STAMP).mtimeMs < newestSource()) {
    execFileSync(process.execPath, [join(REPO_ROOT, "scripts/build.mjs")], { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "inherit"] });
  }
  return join(REPO_ROOT, "dist");
}
