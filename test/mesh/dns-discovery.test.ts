// Peers found through a DNS name that resolves to every replica (the Kubernetes headless-service
// pattern): three replicas on 127.0.0.1-3 sharing one peer port find each other, skip their own
// address, and pick up a replica that appears in a later answer. Only the resolver is supplied
// by the test; servers, streams and replication are real.

import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config/load.ts";
import { PeerDiscovery } from "../../src/mesh/discovery.ts";
import { type RunningServer, startServer } from "../../src/server/tokenmesh-server.ts";
import { eventually } from "../support/mesh.ts";
import { freePort } from "../support/process.ts";

describe("PeerDiscovery", () => {
  it("merges static and DNS addresses, drops its own, and keeps the last answer when DNS fails", async () => {
    let answer: string[] | Error = ["10.0.0.1", "10.0.0.2", "fd00::3"];
    const discovery = new PeerDiscovery(
      { statics: ["10.9.9.9:7000"], dns: { name: "peers", port: 7051 }, self: "10.0.0.2:7051" },
      async () => {
        if (answer instanceof Error) throw answer;
        return answer;
      },
    );
    expect(await discovery.addresses()).toEqual(["10.0.0.1:7051", "10.9.9.9:7000", "[fd00::3]:7051"]);
    answer = new Error("SERVFAIL");
    expect(await discovery.addresses()).toEqual(["10.0.0.1:7051", "10.9.9.9:7000", "[fd00::3]:7051"]);
    answer = ["10.0.0.1"];
    expect(await discovery.addresses()).toEqual(["10.0.0.1:7051", "10.9.9.9:7000"]);
  });
});

describe("a mesh discovered through DNS", () => {
  const servers: RunningServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.shutdown()));
  });

  it("connects every replica the name resolves to, including one added later", async () => {
    const port = await freePort();
    let records = ["127.0.0.1", "127.0.0.2"];
    const resolve = async () => records;
    for (const i of [1, 2, 3]) {
      const config = resolveConfig(
        {
          listen: "127.0.0.1:0",
          metricsListen: null,
          httpListen: null,
          logLevel: "silent",
          dataDir: null,
          mesh: {
            node: `d${i}`,
            cluster: "dns",
            peerListen: `127.0.0.${i}:${port}`,
            dns: { name: "tokenmesh-peers.test", port, every: "200ms" },
            insecure: true,
          },
          policies: { api: { capacity: 10, refill: 1, per: "1s" } },
        },
        `d${i}`,
      );
      servers.push(await startServer({ config, log: pino({ level: "silent" }), resolve }));
    }
    const connected = () => servers.map((s) => s.mesh?.stats.connected.size);
    // d1 and d2 are in DNS: they find each other; d3 only dials them (it resolves the same name).
    await eventually(() => connected()[0] === 1 && connected()[1] === 1, 10_000, "d1 and d2 connected");
    // Nobody dials itself: a replica's own address is dropped from the answer.
    for (const s of servers) for (const link of s.mesh?.links() ?? []) expect(link.isSelf).toBe(false);
    records = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
    await eventually(() => connected().every((n) => n === 2), 10_000, "all three connected after the new record");
    expect(connected()).toEqual([2, 2, 2]);
  }, 30_000);
});
