// Relays per region with real processes over loopback: the two-region example of
// config/multi-region/ (two regions of two replicas, `mesh.relays: true`), each replica its own
// `serve` process on free ports. While everyone is up, data crosses between regions on one link
// per direction, region-a-1 <-> region-b-1 (the smallest names); the other cross-region links
// stay idle. Then region A's relay is killed: region-a-2 takes over, region-b-1 follows, and a
// key consumed in region B still reaches region A. Counted from the per-peer delta counters
// (`tokenmesh_peer_deltas_sent_total`), as differences over a window after readiness, since a
// replica that connects to the other region before its own may briefly elect itself.
// A strict policy banked by region-a-2 (not a relay) shows that escrow does not follow the
// lanes: region-b-2 is served over the a-2 <-> b-2 link, which carries no deltas, and once the
// bank is gone b-2 spends only what it held and then denies for escrow.

import { type Channel, createChannel, createClient } from "nice-grpc";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/mesh.ts";
import { paceLoad } from "../support/mesh-processes.ts";
import { copyExampleOnFreePorts, exampleConfigs } from "../support/multi-region-example.ts";
import { type Spawned, spawnCli } from "../support/process.ts";
import { type RateLimiterClient, rateLimiterDefinition } from "../support/server.ts";

/** Four processes starting with both cores busy: the waits end as soon as all are up. */
const START_TIMEOUT_MS = 120_000;
const LEASE_MS = 1_000;
/** Added to every copy of the example: banked by a replica that is no region's relay. */
const STRICT_POLICY = { strict: { capacity: 10, refill: 20, per: "1s", mode: "strict", bank: "region-a-2", lease: `${LEASE_MS}ms` } };

interface Running {
  readonly node: string;
  readonly region: string;
  readonly metricsPort: number;
  readonly client: RateLimiterClient;
  readonly channel: Channel;
  readonly process: Spawned;
}

async function metrics(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

function value(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.split(" ")[1]);
}

/** A per-peer counter of each replica so far: "from>to" -> value (deltas by default). */
async function deltasSent(running: readonly Running[], series = "tokenmesh_peer_deltas_sent_total"): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const r of running) {
    if (r.process.child.exitCode !== null || r.process.child.signalCode !== null) continue;
    const text = await metrics(r.metricsPort);
    for (const p of running) if (p !== r) out.set(`${r.node}>${p.node}`, value(text, `${series}{peer="${p.node}"}`));
  }
  return out;
}

describe("relays per region, two regions of two processes (config/multi-region)", () => {
  const { configs } = exampleConfigs();
  const running: Running[] = [];
  const byNode = (node: string): Running => {
    const r = running.find((x) => x.node === node);
    if (r === undefined) throw new Error(`no replica ${node}`);
    return r;
  };
  const remaining = async (r: Running, key: string): Promise<number> => {
    const q = await r.client.query({ decisions: [{ buckets: [{ policy: "login", key }] }] });
    return Number(q.results[0]?.buckets[0]?.remaining);
  };

  beforeAll(async () => {
    for (const { config: c, address, metricsPort, path } of await copyExampleOnFreePorts("tokenmesh-relays-", STRICT_POLICY)) {
      const channel = createChannel(address);
      running.push({
        node: c.mesh.node,
        region: c.mesh.region,
        metricsPort,
        channel,
        client: createClient(rateLimiterDefinition, channel),
        process: spawnCli(["serve", "--config", path]),
      });
    }
    await eventually(
      async () => {
        for (const r of running) if (r.process.child.exitCode !== null) throw new Error(`${r.node} exited: ${r.process.stderr()}`);
        const states = await Promise.all(
          running.map(async (r) => {
            const text = await metrics(r.metricsPort).catch(() => "");
            return value(text, "tokenmesh_ready") === 1 && value(text, "tokenmesh_peers_connected") === 3;
          }),
        );
        return states.every(Boolean);
      },
      START_TIMEOUT_MS,
      "all four replicas ready and connected",
    );
  }, START_TIMEOUT_MS + 10_000);

  afterAll(async () => {
    for (const r of running) r.channel.close();
    await Promise.all(
      running.map(async (r) => {
        if (r.process.child.exitCode === null && r.process.child.signalCode === null) r.process.child.kill("SIGTERM");
        await r.process.exited(30_000);
      }),
    );
  }, 40_000);

  it("the example turns relays on in every file", () => {
    for (const c of configs) expect(c.mesh.relays).toBe(true);
  });

  it("converges, and only the two relays send to the other region", async () => {
    const before = await deltasSent(running);
    // `login` barely refills (1 token per 10 s): after 3 of its 5, every replica must read 2.
    const a2 = byNode("region-a-2");
    const consumed = await a2.client.consume({ decisions: [{ buckets: [{ policy: "login", key: "alice", cost: 3 }] }] });
    expect(consumed.results[0]?.allowed).toBe(true);
    await eventually(
      async () => (await Promise.all(running.map((r) => remaining(r, "alice")))).every((x) => x === 2),
      30_000,
      "all four replicas read 2 tokens left",
    );
    const after = await deltasSent(running);
    const grew = (link: string): number => (after.get(link) ?? 0) - (before.get(link) ?? 0);
    // a-2's consumption reached region B through a-1 -> b-1, and b-2 through b-1.
    expect(grew("region-a-1>region-b-1")).toBeGreaterThan(0);
    for (const idle of [
      "region-a-1>region-b-2",
      "region-a-2>region-b-1",
      "region-a-2>region-b-2",
      "region-b-2>region-a-1",
      "region-b-2>region-a-2",
      "region-b-1>region-a-2",
    ]) {
      expect(grew(idle), `${idle} carries nothing while both relays are up`).toBe(0);
    }
  }, 60_000);

  it("serves a strict key in region B from its bank region-a-2 over a link that carries no deltas (escrow goes direct)", async () => {
    const b2 = byNode("region-b-2");
    const deltasBefore = await deltasSent(running);
    const bytesBefore = await deltasSent(running, "tokenmesh_peer_bytes_sent_total");
    // b-2 holds no share until it asked the bank and the grant came back (denied for escrow until then).
    await eventually(
      async () => (await b2.client.consume({ decisions: [{ buckets: [{ policy: "strict", key: "eve" }] }] })).results[0]?.allowed === true,
      30_000,
      "region-b-2 admits a strict decision",
    );
    const deltasAfter = await deltasSent(running);
    const bytesAfter = await deltasSent(running, "tokenmesh_peer_bytes_sent_total");
    const grew = (after: Map<string, number>, before: Map<string, number>, link: string): number =>
      (after.get(link) ?? 0) - (before.get(link) ?? 0);
    for (const link of ["region-b-2>region-a-2", "region-a-2>region-b-2"]) {
      expect(grew(deltasAfter, deltasBefore, link), `${link} carries no deltas (neither end is a relay)`).toBe(0);
      expect(grew(bytesAfter, bytesBefore, link), `${link} carried the escrow request or grant`).toBeGreaterThan(0);
    }
  }, 60_000);

  it("fails over when region A's relay dies: region-a-2 takes over and B's data still reaches A", async () => {
    const a1 = byNode("region-a-1");
    a1.process.child.kill("SIGKILL");
    await a1.process.exited(15_000);
    const before = await deltasSent(running);
    const b2 = byNode("region-b-2");
    const consumed = await b2.client.consume({ decisions: [{ buckets: [{ policy: "login", key: "bob", cost: 4 }] }] });
    expect(consumed.results[0]?.allowed).toBe(true);
    const alive = running.filter((r) => r !== a1);
    await eventually(
      async () => (await Promise.all(alive.map((r) => remaining(r, "bob")))).every((x) => x === 1),
      30_000,
      "the three live replicas read 1 token left",
    );
    const after = await deltasSent(alive);
    const grew = (link: string): number => (after.get(link) ?? 0) - (before.get(link) ?? 0);
    expect(grew("region-b-1>region-a-2"), "b-1 now sends region B's data to a-2").toBeGreaterThan(0);
    expect(grew("region-b-2>region-a-2"), "b-2 still sends nothing across").toBe(0);
  }, 60_000);

  it("once the bank is gone, region-b-2 spends only what it held, then denies for escrow", async () => {
    const b2 = byNode("region-b-2");
    // A share held now (the bank granting to b-2 again under demand), then the bank dies.
    await paceLoad(b2.client, "strict", "held", 20, Date.now() + 1_000, 5);
    const bank = byNode("region-a-2");
    bank.process.child.kill("SIGKILL");
    await bank.process.exited(15_000);
    const goneAt = Date.now();
    const during = await paceLoad(b2.client, "strict", "held", 20, goneAt + LEASE_MS + 300, 6);
    // Every lease b-2 holds answers a request sent before the bank died, so it ends within L of that.
    const late = during.admissions.filter((a) => a.sentMs > goneAt + LEASE_MS);
    const answer = await b2.client.consume({ decisions: [{ buckets: [{ policy: "strict", key: "held" }] }] });
    const status = answer.results[0]?.buckets[0];
    console.log(
      `strict with relays, bank gone: region-b-2 admitted ${during.allowed} after the kill (${late.length} later than L); then deny_reason ${status?.denyReason} held ${status?.heldTokens}`,
    );
    expect(during.allowed).toBeLessThanOrEqual(10 + (20 * LEASE_MS) / 1000);
    expect(late.length).toBe(0);
    expect(answer.results[0]?.allowed).toBe(false);
    expect(status?.denyReason).toBe(2); // DENY_REASON_ESCROW
  }, 60_000);
});
