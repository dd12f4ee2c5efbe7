// The two-region example in config/multi-region/ runs as the README says (`tokenmesh local-mesh`
// on its four files) and replicates: a key consumed at one replica reads the same at all four.
// The files are copied with every port replaced by a free one (and a fresh data directory), so
// the test runs beside anything else on this machine; nothing else in them changes.

import { type Channel, createChannel, createClient } from "nice-grpc";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/mesh.ts";
import { copyExampleOnFreePorts, exampleConfigs } from "../support/multi-region-example.ts";
import { type Spawned, spawnCli } from "../support/process.ts";
import { type RateLimiterClient, rateLimiterDefinition } from "../support/server.ts";

/** Slow start-up of four tsx processes with both cores busy: the waits end as soon as all are up. */
const START_TIMEOUT_MS = 120_000;

interface Running {
  readonly node: string;
  readonly region: string;
  readonly metricsPort: number;
  readonly client: RateLimiterClient;
  readonly channel: Channel;
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? Number.NaN : Number(line.split(" ")[1]);
}

describe("the two-region example (config/multi-region)", () => {
  const { files, configs } = exampleConfigs();
  let mesh: Spawned | undefined;
  const running: Running[] = [];

  it("has two regions of two replicas, each listing the three others as peers", () => {
    expect(files).toHaveLength(4);
    const regions = new Map<string, number>();
    for (const c of configs) regions.set(c.mesh.region, (regions.get(c.mesh.region) ?? 0) + 1);
    expect([...regions.values()]).toEqual([2, 2]);
    const peerPorts = configs.map((c) => c.mesh.peerListen);
    configs.forEach((c, i) => {
      expect([...c.mesh.peers].sort()).toEqual(peerPorts.filter((_, j) => j !== i).sort());
    });
  });

  beforeAll(async () => {
    const copies = await copyExampleOnFreePorts("tokenmesh-multi-region-");
    const paths = copies.map((c) => c.path);
    mesh = spawnCli(["local-mesh", ...paths], { TOKENMESH_DATA_DIR: "" });
    for (const { config: c, address, metricsPort } of copies) {
      const channel = createChannel(address);
      running.push({
        node: c.mesh.node,
        region: c.mesh.region,
        metricsPort,
        channel,
        client: createClient(rateLimiterDefinition, channel),
      });
    }
    // Ready: every replica admits and has a stream to each of the three others.
    await eventually(
      async () => {
        const states = await Promise.all(
          running.map(async (r) =>
            Promise.all([metric(r.metricsPort, "tokenmesh_ready"), metric(r.metricsPort, "tokenmesh_peers_connected")]).catch(() => [0, 0]),
          ),
        );
        if (mesh?.child.exitCode !== null) throw new Error(`local-mesh exited: ${mesh?.stdout()}\n${mesh?.stderr()}`);
        return states.every(([ready, peers]) => ready === 1 && peers === 3);
      },
      START_TIMEOUT_MS,
      "all four replicas ready and connected",
    );
  }, START_TIMEOUT_MS + 10_000);

  afterAll(async () => {
    for (const r of running) r.channel.close();
    if (mesh !== undefined && mesh.child.exitCode === null) {
      mesh.child.kill("SIGTERM");
      await mesh.exited(30_000);
    }
  }, 40_000);

  it("logs each peer's region when it connects", () => {
    const out = mesh?.stdout() ?? "";
    for (const region of new Set(configs.map((c) => c.mesh.region))) expect(out).toContain(`"region":"${region}"`);
  });

  it("converges: a key consumed at one replica in region A reads the same at all four", async () => {
    const origin = running[0] as Running;
    // `login` barely refills (1 token per 10 s): after 3 of its 5, every replica must read 2.
    const consumed = await origin.client.consume({ decisions: [{ buckets: [{ policy: "login", key: "alice", cost: 3 }] }] });
    expect(consumed.results[0]?.allowed).toBe(true);
    const remaining = async (r: Running): Promise<number> => {
      const q = await r.client.query({ decisions: [{ buckets: [{ policy: "login", key: "alice" }] }] });
      return Number(q.results[0]?.buckets[0]?.remaining);
    };
    await eventually(
      async () => (await Promise.all(running.map(remaining))).every((x) => x === 2),
      30_000,
      "all four replicas read 2 tokens left",
    );
    expect(new Set(running.map((r) => r.region)).size).toBe(2);
  }, 40_000);
});
