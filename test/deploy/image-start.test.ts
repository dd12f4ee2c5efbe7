// The container image, checked without a Docker engine: the Dockerfile is read (not restated),
// its runtime stage is replayed into a clean directory outside the repo (the build output and
// package files it copies, its `npm ci --omit=dev`), and its exact CMD runs there with the
// stage's ENV and a mounted config, then has to serve: the HEALTHCHECK command succeeds (and
// fails once nothing answers) and a `consume` is allowed. Paths the image has at its root (/etc/tokenmesh, ...) live under
// the directory's rootfs/.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { resolveConfig } from "../../src/config/load.ts";
import { ensureBuild } from "../support/build.ts";
import { readDockerfile, type Stage } from "../support/dockerfile.ts";
import { REPO_ROOT } from "../support/process.ts";

const { stages, problems } = readDockerfile();
const runtime = stages.at(-1) as Stage;
const build = stages.find((s) => s.name !== undefined && runtime.steps.some((st) => st.kind === "copy" && st.from === s.name));

/** Steps of a RUN that only tidy the image: nothing to replay outside a container. */
const HOUSEKEEPING = [/^npm cache clean --force$/, /^chown [\w:]+ \S+$/];

const rootfs = mkdtempSync(join(tmpdir(), "tokenmesh-image-"));
const inImage = (path: string): string => join(rootfs, path.startsWith("/") ? path : join(runtime.workdir, path));

/** COPY: from the build context (the repo) or from the build stage, whose WORKDIR is the repo's root. */
function copy(from: string | undefined, source: string, dest: string): void {
  let origin = join(REPO_ROOT, source);
  if (from !== undefined) {
    if (build === undefined || !source.startsWith(`${build.workdir}/`))
      throw new Error(`COPY --from=${from} ${source}: outside the build stage's WORKDIR`);
    origin = join(REPO_ROOT, source.slice(build.workdir.length + 1));
  }
  const target = inImage(dest);
  const intoDir = dest.endsWith("/") && !statSync(origin).isDirectory();
  mkdirSync(intoDir ? target : join(target, ".."), { recursive: true });
  cpSync(origin, intoDir ? join(target, basename(source)) : target, { recursive: true });
}

function replayRuntimeStage(): void {
  mkdirSync(inImage("."), { recursive: true });
  for (const step of runtime.steps) {
    if (step.kind === "copy") {
      for (const source of step.sources) copy(step.from, source, step.dest);
      continue;
    }
    for (const segment of step.command.split("&&").map((s) => s.trim())) {
      if (/^npm ci\b/.test(segment)) {
        execFileSync("npm", segment.split(/\s+/).slice(1), { cwd: inImage("."), stdio: ["ignore", "ignore", "pipe"], timeout: 170_000 });
      } else if (/^mkdir -p \S+$/.test(segment)) {
        mkdirSync(inImage(segment.split(/\s+/)[2] as string), { recursive: true });
      } else if (!HOUSEKEEPING.some((re) => re.test(segment))) {
        throw new Error(`the runtime stage runs "${segment}": teach this test what it does outside a container`);
      }
    }
  }
}

/** An argument list of the image run here: `node` is this Node, absolute paths are under rootfs/. */
const mapArgs = (args: readonly string[]): string[] =>
  args.map((a, i) => (i === 0 && a === "node" ? process.execPath : a.startsWith("/") ? join(rootfs, a) : a));

const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

/** Runs a command of the image with the stage's ENV (and nothing of this process's but PATH). */
function runInImage(
  args: readonly string[],
  env: Record<string, string> = {},
): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
  const [command, ...rest] = mapArgs(args);
  const child = spawn(command as string, rest, {
    cwd: inImage("."),
    // The configs put dataDir at the image's data volume; here that volume lives under rootfs.
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: join(rootfs, "home"),
      ...runtime.env,
      TOKENMESH_DATA_DIR: join(rootfs, "var/lib/tokenmesh"),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let output = "";
  child.stdout?.on("data", (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    output += d.toString();
  });
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  void exit.then(() => children.delete(child));
  return { child, output: () => output, exit };
}

/** Starts the image's CMD and resolves with the client address from its "tokenmesh serving" line. */
async function serveCmd(
  env: Record<string, string> = {},
): Promise<{ address: string; httpPort?: number; metricsPort?: number; stop: () => Promise<number | null> }> {
  const server = runInImage(runtime.cmd ?? [], env);
  const serving = await new Promise<{ address: string; httpPort?: number; metricsPort?: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not serving after 20 s:\n${server.output()}`)), 20_000);
    const poll = setInterval(() => {
      const line = server
        .output()
        .split("\n")
        .find((l) => l.includes("tokenmesh serving"));
      if (line === undefined && server.child.exitCode === null) return;
      clearInterval(poll);
      clearTimeout(timer);
      if (line === undefined) reject(new Error(`exited ${server.child.exitCode} before serving:\n${server.output()}`));
      else resolve(JSON.parse(line) as { address: string; httpPort?: number; metricsPort?: number });
    }, 20);
  });
  return {
    ...serving,
    stop: () => {
      server.child.kill("SIGTERM");
      return server.exit;
    },
  };
}

/** The HEALTHCHECK command, its fixed HTTP port replaced by the one this run bound. */
const healthcheckAt = (httpPort: number | undefined): string[] =>
  (runtime.healthcheck?.command ?? []).map((a) => a.replace("127.0.0.1:8080", `127.0.0.1:${httpPort}`));

async function runToExit(args: readonly string[]): Promise<{ code: number | null; output: string }> {
  const run = runInImage(args);
  const timer = setTimeout(() => run.child.kill("SIGKILL"), 20_000);
  const code = await run.exit;
  clearTimeout(timer);
  return { code, output: run.output() };
}

describe("the Dockerfile", () => {
  it("passes dockerfile-utils' checks", () => {
    expect(problems).toEqual([]);
  });

  it("builds in a stage of its own with npm ci and npm run build", () => {
    expect(build?.name).toBeDefined();
    const runs = build?.steps.flatMap((s) => (s.kind === "run" ? [s.command] : [])) ?? [];
    expect(runs.some((r) => /^npm ci\b/.test(r))).toBe(true);
    expect(runs.some((r) => /\bnpm run build$/.test(r))).toBe(true);
  });

  it("runs on a slim Node 20 image as a non-root user, with a health check and the config and data directories as volumes", () => {
    expect(runtime.image).toMatch(/^node:20[.\w-]*-slim$/);
    expect(runtime.user).toBeDefined();
    expect(["root", "0"]).not.toContain(runtime.user);
    expect(runtime.healthcheck?.command[0]).toBe("node");
    expect(runtime.volumes).toEqual(expect.arrayContaining(["/etc/tokenmesh", "/var/lib/tokenmesh"]));
    const config = runtime.cmd?.[(runtime.cmd?.indexOf("--config") ?? -2) + 1];
    expect(config).toMatch(/^\/etc\/tokenmesh\//);
  });

  it("bakes in a config that tokenmesh accepts, listening beyond loopback", () => {
    const baked = runtime.steps.find((s) => s.kind === "copy" && s.dest === runtime.cmd?.at(-1));
    expect(baked?.kind).toBe("copy");
    const source = baked?.kind === "copy" ? (baked.sources[0] as string) : "";
    const config = resolveConfig(parseYaml(readFileSync(join(REPO_ROOT, source), "utf8")), source);
    expect(config.listen).toBe("0.0.0.0:50051");
    expect(runtime.exposed).toContain(Number(config.listen.split(":")[1]));
    // The HEALTHCHECK asks /ready on the HTTP port this config opens.
    expect(config.httpListen).toBe("0.0.0.0:8080");
    expect(runtime.exposed).toContain(8080);
    expect(runtime.healthcheck?.command.join(" ")).toContain("http://127.0.0.1:8080/ready");
  });
});

describe("the image's start command, outside the repo", () => {
  beforeAll(() => {
    ensureBuild(); // the build stage's `npm run build`, on this checkout (npm ci already ran here)
    replayRuntimeStage();
  }, 180_000);

  afterAll(() => {
    for (const c of children) c.kill("SIGKILL");
  });

  it("holds the build and the production dependencies only: no sources, no dev tooling", () => {
    const app = inImage(".");
    expect(existsSync(join(app, "dist/tokenmesh.mjs"))).toBe(true);
    expect(existsSync(join(app, "src"))).toBe(false);
    const installed = readdirSync(join(app, "node_modules"));
    for (const dev of ["tsx", "typescript", "esbuild", "vitest", "@biomejs"]) expect(installed).not.toContain(dev);
    expect(installed).toContain("pino"); // the one dependency the build leaves outside the bundle
  });

  it("serves with a mounted config: the HEALTHCHECK command succeeds and a consume is allowed", async () => {
    const mounted = runtime.cmd?.at(-1) as string;
    writeFileSync(
      inImage(mounted),
      "listen: 127.0.0.1:0\nmetricsListen: null\nhttpListen: 127.0.0.1:0\npolicies:\n  login: { capacity: 2, refill: 1, per: 10s }\n",
    );
    const server = await serveCmd();
    try {
      // The HEALTHCHECK as written, pointed at the HTTP port this run bound (the image's is fixed).
      expect(await runToExit(healthcheckAt(server.httpPort))).toEqual({ code: 0, output: "" });
      const consume = await runToExit([
        "node",
        "bin/tokenmesh.mjs",
        "consume",
        "--address",
        server.address,
        "--policy",
        "login",
        "--key",
        "k",
      ]);
      expect(consume.code).toBe(0);
      expect(consume.output).toMatch(/^allowed {2}login\/k {2}remaining=1\/2/);
    } finally {
      expect(await server.stop()).toBe(0);
    }
    // ...and fails once nothing answers there.
    expect((await runToExit(healthcheckAt(server.httpPort))).code).toBe(1);
  });

  it("serves with the baked config, its ports moved by the environment, and reports the build it runs", async () => {
    // The baked config as shipped (the previous test mounted over it): copy it back first.
    const baked = runtime.steps.find((s) => s.kind === "copy" && s.dest === runtime.cmd?.at(-1));
    if (baked?.kind === "copy") copy(baked.from, baked.sources[0] as string, baked.dest);
    const server = await serveCmd({
      TOKENMESH_LISTEN: "127.0.0.1:0",
      TOKENMESH_METRICS_LISTEN: "127.0.0.1:0",
      TOKENMESH_HTTP_LISTEN: "127.0.0.1:0",
    });
    try {
      // No .git in the image: the commit comes from the build's own record.
      const built = JSON.parse(readFileSync(inImage("dist/build-info.json"), "utf8")) as { version: string; commit: string };
      const metrics = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
      expect(metrics).toContain(`tokenmesh_build_info{version="${built.version}",commit="${built.commit}"} 1`);
      const consume = await runToExit([
        "node",
        "bin/tokenmesh.mjs",
        "consume",
        "--address",
        server.address,
        "--policy",
        "api",
        "--key",
        "k",
      ]);
      expect(consume.code).toBe(0);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });
});
