// What this process runs, for `tokenmesh_build_info{version,commit}`. Resolved once at start-up,
// never on a request: the version from tokenmesh's package.json, the commit from (in order) the
// TOKENMESH_COMMIT environment variable, a BUILD_COMMIT file beside package.json, `git rev-parse`
// run once in the background when the package is a git checkout, or the commit `npm run build`
// recorded in dist/build-info.json (a container image has no .git).
// Anything else reads "unknown" rather than failing start-up.

import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface BuildInfo {
  readonly version: string;
  /** Settles to a commit id or "unknown"; never rejects. */
  readonly commit: Promise<string>;
}

export const UNKNOWN = "unknown";

/** A label value we are willing to export: short, printable, no quoting surprises. */
const COMMIT_PATTERN = /^[A-Za-z0-9._+-]{1,64}$/;

const clean = (text: string | undefined): string | undefined => {
  const first = text?.split("\n")[0]?.trim();
  return first !== undefined && COMMIT_PATTERN.test(first) ? first : undefined;
};

/** The nearest directory above `start` holding tokenmesh's package.json (works from src/ and a build output). */
export function packageRoot(start: string = dirname(fileURLToPath(import.meta.url))): string | undefined {
  for (let dir = start; ; dir = dirname(dir)) {
    const file = join(dir, "package.json");
    if (existsSync(file)) {
      try {
        if ((JSON.parse(readFileSync(file, "utf8")) as { name?: unknown }).name === "tokenmesh") return dir;
      } catch {
        // Not ours or unreadable: keep looking upwards.
      }
    }
    if (dirname(dir) === dir) return undefined;
  }
}

function readVersion(root: string | undefined): string {
  if (root === undefined) return UNKNOWN;
  try {
    const version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version?: unknown }).version;
    return typeof version === "string" ? version : UNKNOWN;
  } catch {
    return UNKNOWN;
  }
}

function gitCommit(root: string): Promise<string> {
  return new Promise((resolve) => {
    execFile("git", ["rev-parse", "--short=12", "HEAD"], { cwd: root, timeout: 5_000 }, (err, stdout) => {
      resolve(err === null ? (clean(stdout) ?? UNKNOWN) : UNKNOWN);
    });
  });
}

function readCommit(root: string | undefined, env: NodeJS.ProcessEnv): Promise<string> {
  const fromEnv = clean(env.TOKENMESH_COMMIT);
  if (fromEnv !== undefined) return Promise.resolve(fromEnv);
  if (root === undefined) return Promise.resolve(UNKNOWN);
  const file = join(root, "BUILD_COMMIT");
  if (existsSync(file)) {
    try {
      return Promise.resolve(clean(readFileSync(file, "utf8")) ?? UNKNOWN);
    } catch {
      return Promise.resolve(UNKNOWN);
    }
  }
  // `.git` is a directory in a clone and a file in a worktree.
  return existsSync(join(root, ".git")) ? gitCommit(root) : Promise.resolve(builtCommit(root));
}

/** The commit scripts/build.mjs wrote into dist/build-info.json, if any. */
function builtCommit(root: string): string {
  try {
    const { commit } = JSON.parse(readFileSync(join(root, "dist/build-info.json"), "utf8")) as { commit?: unknown };
    return (typeof commit === "string" ? clean(commit) : undefined) ?? UNKNOWN;
  } catch {
    return UNKNOWN;
  }
}

export function resolveBuildInfo(env: NodeJS.ProcessEnv = process.env, root: string | undefined = packageRoot()): BuildInfo {
  return { version: readVersion(root), commit: readCommit(root, env) };
}
