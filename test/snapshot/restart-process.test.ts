// Real `tokenmesh serve` processes restarted on the same data directory: a standalone replica
// keeps its buckets across kill -9 (once a snapshot was written after the calls) and across
// SIGTERM (always); a replica given a snapshot it cannot use starts anyway, empty, and its log
// says which file and why.

import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createChannel, createClient } from "nice-grpc";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { freePort, type Spawned, spawnCli } from "../support/process.ts";
import { rateLimiterDefinition } from "../support/server.ts";

const root = mkdtempSync(join(tmpdir(), "tokenmesh-restart-"));
const started: Spawned[] = [];
const POLICIES = { login: { capacity: 5, refill: 1, per: "1h" } };
const bucket = { policy: "login", key: "mallory" };

interface Replica {
  readonly process: Spawned;
  readonly address: string;
  readonly metrics: number;
}

async function serve(name: string, dataDir: string, extra: Record<string, unknown> = {}): Promise<Replica> {
  const address = `127.0.0.1:${await freePort()}`;
  const metrics = await freePort();
  const path = join(root, `${name}.yaml`);
  writeFileSync(
    path,
    stringify({ listen: address, metricsListen: `127.0.0.1:${metrics}`, httpListen: null, dataDir, policies: POLICIES, ...extra }),
  );
  const process = spawnCli(["serve", "--config", path], { TOKENMESH_DATA_DIR: "" });
  started.push(process);
  await process.waitFor("tokenmesh serving", 60_000);
  return { process, address, metrics };
}

async function call(r: Replica, consume: boolean): Promise<{ allowed: boolean; remaining: number }> {
  const channel = createChannel(r.address);
  try {
    const client = createClient(rateLimiterDefinition, channel);
    const request = { decisions: [{ buckets: [bucket] }] };
    const res = consume ? await client.consume(request) : await client.query(request);
    const d = res.results[0];
    return { allowed: d?.allowed === true, remaining: Number(d?.buckets[0]?.remaining ?? -1) };
  } finally {
    channel.close();
  }
}

async function writesOk(r: Replica): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${r.metrics}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith('tokenmesh_snapshot_writes_total{result="ok"}'));
  return Number(line?.split(" ")[1] ?? Number.NaN);
}

/** The JSON log lines of a process. */
const logLines = (p: Spawned): Record<string, unknown>[] =>
  p
    .stdout()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

afterAll(async () => {
  for (const p of started) if (p.child.exitCode === null) p.child.kill("SIGKILL");
  await Promise.all(started.map((p) => p.exited(5_000)));
});

describe("a standalone replica restarted on its data directory", () => {
  it("keeps its buckets across kill -9 once a snapshot followed the calls", async () => {
    const dataDir = join(root, "kill9");
    const first = await serve("kill9", dataDir);
    for (let i = 0; i < 3; i++) expect((await call(first, true)).allowed).toBe(true);
    const before = await writesOk(first);
    const deadline = Date.now() + 30_000;
    while ((await writesOk(first)) <= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    first.process.child.kill("SIGKILL");
    await first.process.exited();
    const second = await serve("kill9", dataDir);
    expect(await call(second, false)).toEqual({ allowed: true, remaining: 2 });
    expect(logLines(second.process).find((l) => l.msg === "snapshot loaded")).toMatchObject({ items: 1 });
  }, 120_000);

  it("keeps its buckets across SIGTERM, however soon after the calls", async () => {
    const dataDir = join(root, "term");
    const first = await serve("term", dataDir, { snapshotInterval: "1h" });
    for (let i = 0; i < 4; i++) expect((await call(first, true)).allowed).toBe(true);
    first.process.child.kill("SIGTERM");
    expect(await first.process.exited()).toBe(0);
    expect(first.process.stdout()).toContain("snapshot written at shutdown");
    const second = await serve("term", dataDir);
    expect(await call(second, false)).toEqual({ allowed: true, remaining: 1 });
  }, 120_000);
});

describe("a snapshot that cannot be used", () => {
  const spoil = {
    truncated: (f: string) => writeFileSync(f, readFileSync(f).subarray(0, -10)),
    "flipped byte": (f: string) => {
      const b = readFileSync(f);
      const at = Math.floor(b.length / 2);
      b[at] = (b[at] as number) ^ 0x40;
      writeFileSync(f, b);
    },
    "another version": (f: string) => {
      const b = readFileSync(f);
      b.writeUInt32LE(99, 8);
      writeFileSync(f, b);
    },
    "not a snapshot": (f: string) => writeFileSync(f, "{}\n"),
  };
  const reasons: Record<keyof typeof spoil, RegExp> = {
    truncated: /^truncated: /,
    "flipped byte": /checksum mismatch/,
    "another version": /^format version 99, this build reads version 1$/,
    "not a snapshot": /^not a tokenmesh snapshot/,
  };

  it("is refused with the file and the reason in the log, and the replica starts empty", async () => {
    const source = join(root, "good");
    const writer = await serve("good", source, { snapshotInterval: "1h" });
    for (let i = 0; i < 5; i++) await call(writer, true);
    writer.process.child.kill("SIGTERM");
    expect(await writer.process.exited()).toBe(0);
    await Promise.all(
      (Object.keys(spoil) as (keyof typeof spoil)[]).map(async (name, i) => {
        const dataDir = join(root, `bad-${i}`);
        cpSync(source, dataDir, { recursive: true });
        spoil[name](join(dataDir, "base.tms"));
        const r = await serve(`bad-${i}`, dataDir);
        const refused = logLines(r.process).find((l) => typeof l.msg === "string" && l.msg.startsWith("snapshot refused: "));
        expect(refused, name).toMatchObject({ level: "error", file: "base.tms", dataDir });
        expect(String(refused?.reason), name).toMatch(reasons[name]);
        expect(String(refused?.msg), name).toContain("starting without a snapshot");
        expect(await call(r, false), name).toEqual({ allowed: true, remaining: 5 });
      }),
    );
  }, 120_000);

  it("of another node is refused by a mesh replica, which starts and warms up", async () => {
    const dataDir = join(root, "mesh-a");
    const mesh = (node: string) => ({ mesh: { node, peerListen: `127.0.0.1:0`, insecure: true } });
    const a = await serve("mesh-a", dataDir, { snapshotInterval: "1h", ...mesh("a") });
    await call(a, true);
    a.process.child.kill("SIGTERM");
    expect(await a.process.exited()).toBe(0);
    const b = await serve("mesh-b", dataDir, mesh("b"));
    const refused = logLines(b.process).find((l) => typeof l.msg === "string" && l.msg.startsWith("snapshot refused: "));
    expect(refused?.reason).toBe('written by node "a" of cluster "tokenmesh"; this is node "b" of cluster "tokenmesh"');
    expect(refused?.msg).toContain("the replica warms up from its peers");
    expect(await call(b, false)).toEqual({ allowed: true, remaining: 5 });
  }, 120_000);
});
