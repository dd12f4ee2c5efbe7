// docs/tls.md is run, not just read: its marked shell blocks (`<!-- test: NAME -->`) run with
// bash in a scratch directory, and the certificates they make serve the replica config it shows,
// its paths moved from /etc/tokenmesh/tls/ to that directory and its ports to free ones. Two
// replicas built from that config mesh over mutual TLS, the documented `tokenmesh consume`
// gets an answer over client TLS, and the CA rotation's bundle keeps a replica with a
// certificate of the new CA and one with the old in the mesh together.

import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { resolveConfig } from "../../src/config/load.ts";
import { type RunningServer, startServer } from "../../src/server/tokenmesh-server.ts";
import { eventually } from "../support/mesh.ts";
import { freePort, REPO_ROOT, runCli } from "../support/process.ts";

const GUIDE = readFileSync(join(REPO_ROOT, "docs/tls.md"), "utf8");
const DOC_DIR = "/etc/tokenmesh/tls/";

/** The guide's blocks marked `<!-- test: NAME -->`, dedented (some sit in list items). */
function blocks(): Map<string, string> {
  const found = new Map<string, string>();
  for (const m of GUIDE.matchAll(/<!-- test: ([\w-]+) -->\n([ \t]*)```\w+\n([\s\S]*?)\n[ \t]*```/g)) {
    const indent = m[2] ?? "";
    found.set(m[1] as string, (m[3] ?? "").replace(new RegExp(`^${indent}`, "gm"), ""));
  }
  return found;
}

const BLOCKS = blocks();
const block = (name: string): string => {
  const text = BLOCKS.get(name);
  if (text === undefined) throw new Error(`docs/tls.md has no block marked <!-- test: ${name} -->`);
  return text;
};

const runShell = (script: string, cwd: string): void => {
  execFileSync("bash", ["-euo", "pipefail", "-c", script], { cwd, stdio: ["ignore", "ignore", "pipe"] });
};

/** The documented replica config for `node`, its TLS files in `dir`, on free loopback ports. */
function replicaConfig(node: string, dir: string, caFile: string | undefined, peerPort: number, peers: readonly number[]) {
  const text = block("replica-config").replaceAll("replica-1", node).replaceAll(DOC_DIR, `${dir}/`);
  const raw = parseYaml(text) as { tls: object; mesh: { tls: { ca: string } } };
  return resolveConfig(
    {
      ...raw,
      listen: "127.0.0.1:0",
      metricsListen: null,
      httpListen: null,
      logLevel: "silent",
      // Not ./data/<node> in the repository: a later run would load this run's state.
      dataDir: null,
      mesh: {
        ...raw.mesh,
        peerListen: `127.0.0.1:${peerPort}`,
        peers: peers.map((p) => `127.0.0.1:${p}`),
        tls: { ...raw.mesh.tls, ...(caFile === undefined ? {} : { ca: caFile }) },
      },
    },
    `docs/tls.md (${node})`,
  );
}

async function startPair(
  a: { node: string; dir: string },
  b: { node: string; dir: string },
  caFile?: string,
): Promise<[RunningServer, RunningServer]> {
  const [pa, pb] = [await freePort(), await freePort()];
  const log = pino({ level: "silent" });
  const first = await startServer({ config: replicaConfig(a.node, a.dir, caFile, pa, [pb]), log });
  const second = await startServer({ config: replicaConfig(b.node, b.dir, caFile, pb, [pa]), log });
  return [first, second];
}

const connected = (s: RunningServer): string[] => [...(s.mesh?.stats.connected ?? [])];

describe("docs/tls.md", () => {
  const dir = mkdtempSync(join(tmpdir(), "tokenmesh-tls-guide-"));
  const running: RunningServer[] = [];

  beforeAll(() => {
    for (const name of ["cluster-ca", "replica-certs", "client-certs"]) runShell(block(name), dir);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(running.map((s) => s.shutdown()));
  });

  it("has every block the test runs", () => {
    expect([...BLOCKS.keys()].sort()).toEqual([
      "ca-bundle",
      "client-call",
      "client-certs",
      "cluster-ca",
      "replica-certs",
      "replica-config",
    ]);
  });

  it("makes replica certificates that mesh over mutual TLS with the documented config, and serve client TLS", async () => {
    const [one, two] = await startPair({ node: "replica-1", dir }, { node: "replica-2", dir });
    running.push(one, two);
    await eventually(() => connected(one).length === 1 && connected(two).length === 1, 10_000, "the two replicas connected");
    expect(connected(one)).toEqual(["replica-2"]);

    // The documented call, at the port this replica bound, its files in the scratch directory.
    const words = block("client-call").trim().split(/\s+/).slice(1);
    const args = words.map((w, i) =>
      w === "localhost:50051" ? `localhost:${one.port}` : words[i - 1]?.startsWith("--tls-") ? join(dir, w) : w,
    );
    const call = await runCli(args);
    expect(call.stderr).toBe("");
    expect(call.code).toBe(0);
    expect(call.stdout).toMatch(/^allowed {2}api\/alice/);

    // Without the client certificate, the client port refuses the call.
    const anonymous = await runCli(
      args.filter((_, i) => !/^--tls-(cert|key)$/.test(args[i] ?? "") && !/^--tls-(cert|key)$/.test(args[i - 1] ?? "")),
    );
    expect(anonymous.code).toBe(2);
  });

  it("keeps replicas with certificates of the old and the new CA meshed through the rotation's CA bundle", async () => {
    runShell(block("ca-bundle"), dir);
    // Step 2: the replica certificates again, from the new CA (its files as the block expects them).
    const next = join(dir, "next");
    mkdirSync(next);
    copyFileSync(join(dir, "ca-next.crt"), join(next, "ca.crt"));
    copyFileSync(join(dir, "ca-next.key"), join(next, "ca.key"));
    runShell(block("replica-certs"), next);
    copyFileSync(join(dir, "client-ca.crt"), join(next, "client-ca.crt"));

    const bundle = join(dir, "ca-bundle.crt");
    const [old, renewed] = await startPair({ node: "replica-1", dir }, { node: "replica-3", dir: next }, bundle);
    running.push(old, renewed);
    await eventually(() => connected(old).length === 1 && connected(renewed).length === 1, 10_000, "old and renewed replicas connected");
    expect(connected(renewed)).toEqual(["replica-1"]);
  });
});
