// The published artifact: `npm pack` builds dist/ (prepack), the tarball installs into an empty
// project, a plain .mjs script imports it and consumes against a real server, and a strict
// TypeScript consumer type-checks against the shipped declarations.

import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./helpers/server.ts";

const run = promisify(execFile);
const packageDir = resolve(import.meta.dirname, "..");
const repoRoot = resolve(packageDir, "../..");

let server: TestServer;
let project: string;
let tarball: string;

beforeAll(async () => {
  server = await startTestServer();
  project = await mkdtemp(join(tmpdir(), "tokenmesh-client-pack-"));
  await run("npm", ["pack", "--pack-destination", project], { cwd: packageDir, timeout: 60_000 });
  const packed = (await readdir(project)).find((f) => f.endsWith(".tgz"));
  if (packed === undefined) throw new Error(`npm pack wrote no tarball into ${project}`);
  tarball = packed;
  await writeFile(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  // --prefer-offline: the npm cache usually holds every dependency; the registry fills gaps.
  await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", `./${tarball}`], { cwd: project, timeout: 60_000 });
}, 120_000);

afterAll(async () => {
  await server.stop();
  await rm(project, { recursive: true, force: true });
});

describe("npm pack", () => {
  it("ships dist and the README, not the sources or tests", async () => {
    const { stdout } = await run("tar", ["-tzf", join(project, tarball)]);
    const files = stdout.split("\n").filter(Boolean);
    expect(files).toContain("package/dist/index.js");
    expect(files).toContain("package/dist/index.d.ts");
    expect(files).toContain("package/README.md");
    expect(files.some((f) => f.startsWith("package/src/") || f.startsWith("package/test/"))).toBe(false);
  });

  it("installs into an empty project and consumes from a plain .mjs script", async () => {
    const script = join(project, "consume.mjs");
    await writeFile(
      script,
      `import { createLimiter } from "@tokenmesh/client";
const limiter = createLimiter({ address: process.argv[2], deadlineMs: 2000 });
const answers = await Promise.all([1, 2, 3].map(() => limiter.consume({ policy: "api", key: "from-tarball" })));
console.log(JSON.stringify({ answers, stats: limiter.stats() }));
await limiter.close();
`,
    );
    const { stdout } = await run(process.execPath, [script, server.address], { cwd: project, timeout: 20_000 });
    const { answers, stats } = JSON.parse(stdout) as {
      answers: { allowed: boolean; remaining: number; source: string }[];
      stats: { rpcs: number };
    };
    expect(answers.map((a) => [a.allowed, a.remaining, a.source])).toEqual([
      [true, 4, "server"],
      [true, 3, "server"],
      [true, 2, "server"],
    ]);
    expect(stats.rpcs).toBe(1); // the three concurrent calls shared one RPC
  });

  it("type-checks a strict TypeScript consumer against the shipped declarations", async () => {
    await writeFile(
      join(project, "check.ts"),
      `import { createLimiter, type Decision, expressRateLimit, keyFrom } from "@tokenmesh/client";
const limiter = createLimiter({ addresses: ["127.0.0.1:1"], failMode: "closed" });
const d: Decision = await limiter.consume({ buckets: [{ policy: "api", key: "k", cost: 2 }] });
const remaining: number = d.remaining;
expressRateLimit({ limiter, policy: "api", key: keyFrom.ip });
// @ts-expect-error cost must be a number
await limiter.consume({ policy: "api", key: "k", cost: "2" });
export { remaining };
`,
    );
    await writeFile(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "es2022",
          module: "nodenext",
          moduleResolution: "nodenext",
          strict: true,
          noEmit: true,
          types: ["node"],
        },
        files: ["check.ts"],
      }),
    );
    await run(join(repoRoot, "node_modules/.bin/tsc"), ["-p", project], { cwd: project, timeout: 60_000 });
  });
});
