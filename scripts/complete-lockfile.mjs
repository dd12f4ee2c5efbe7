#!/usr/bin/env node
// Completes package-lock.json with the platform-specific optional packages (biome's and buf's
// binaries for other systems) that the npm registry reachable from this workplace does not
// serve: `npm install` then leaves them out of the lock, and `npm ci` refuses a lock that lacks
// an optional dependency. Each added entry names the package, its version and the os/cpu it is
// for, so npm skips it everywhere else and fetches it by version on that platform.
// Run after any `npm install`: `node scripts/complete-lockfile.mjs`.

import { readFileSync, writeFileSync } from "node:fs";

const path = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(path, "utf8"));
const packages = lock.packages;

const PLATFORM =
  /(android|darwin|linux|win32|freebsd|openbsd|netbsd|sunos|aix)-(x64|arm64|aarch64|armv7|arm|ia32|ppc64|s390x|riscv64|x86_64)(-musl)?$/;
const CPU = { aarch64: "arm64", x86_64: "x64", armv7: "arm" };

function platformOf(name) {
  const m = PLATFORM.exec(name);
  if (m === null) return undefined;
  return { os: [m[1]], cpu: [CPU[m[2]] ?? m[2]], ...(m[3] ? { libc: ["musl"] } : {}) };
}

let added = 0;
for (const entry of Object.values(packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    if (packages[key] !== undefined) continue;
    const platform = platformOf(name);
    if (platform === undefined) continue;
    packages[key] = { version, ...platform, optional: true, ...(entry.dev === true ? { dev: true } : {}) };
    added++;
  }
}
const sorted = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : a > b ? 1 : 0)));
writeFileSync(path, `${JSON.stringify({ ...lock, packages: sorted }, null, 2)}\n`);
process.stdout.write(`package-lock.json: added ${added} optional platform entries\n`);
