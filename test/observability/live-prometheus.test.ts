// A real Prometheus scrapes a real 3-replica mesh on loopback and evaluates the shipped alert
// rules against live data: every dashboard query answers with data, nothing alerts while the
// mesh is healthy, a peer refused at the handshake fires TokenmeshPeerMessagesRejected, and a
// replica killed with SIGKILL puts TokenmeshPeerDown in pending on both survivors (it fires a
// minute later, which the promtool unit tests cover). Waits on Prometheus's own APIs, bounded.

import { readFileSync } from "node:fs";
import { ChannelCredentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { helloFor } from "../../src/mesh/handshake.ts";
import { dialPeer, encodeMergeRequest, MERGE_PATH, mergeMethod } from "../../src/mesh/peer-transport.ts";
import { type ProcessMesh, startProcessMesh } from "../support/mesh-processes.ts";
import { type RunningPrometheus, startPrometheus, until } from "../support/prometheus.ts";
import { dashboardQueries, expandGrafanaVariables, RULES_FILE } from "./shipped-queries.ts";

const ISSUE_15 = /tokenmesh_(config_reloads_total|snapshot_age_seconds)/;

/** Opens a Merge stream to `peerAddress` as a replica of another cluster; resolves when refused. */
async function helloFromAnotherCluster(peerAddress: string): Promise<string> {
  const client = dialPeer(peerAddress, ChannelCredentials.createInsecure(), 1 << 20);
  try {
    return await new Promise((resolve, reject) => {
      const stream = client.makeBidiStreamRequest(MERGE_PATH, mergeMethod.requestSerialize, mergeMethod.responseDeserialize);
      const timer = setTimeout(() => reject(new Error("the replica did not refuse the stream within 5 s")), 5_000);
      stream.on("data", () => {});
      stream.on("error", (err: Error) => {
        clearTimeout(timer);
        resolve(err.message);
      });
      stream.write(
        encodeMergeRequest({
          message: {
            case: "hello",
            value: helloFor({ cluster: "someone-else", region: "x", node: "intruder", incarnation: "0660e96f10d5b45e75258949e88b4509" }),
          },
        }),
      );
    });
  } finally {
    client.close();
  }
}

describe("Prometheus scraping a live mesh with the shipped rules", { timeout: 60_000 }, () => {
  let mesh: ProcessMesh;
  let prom: RunningPrometheus;
  const instance = (i: number) => `127.0.0.1:${mesh.replicas[i]?.metricsPort}`;

  beforeAll(async () => {
    mesh = await startProcessMesh({ size: 3, policies: { login: { capacity: 2, refill: 1, per: "1h" } } });
    await mesh.fullyConnected();
    await Promise.all(mesh.replicas.map((_, i) => mesh.ready(i)));
    prom = await startPrometheus({ targets: mesh.replicas.map((_, i) => instance(i)), ruleFiles: [RULES_FILE] });
  }, 180_000);
  afterAll(async () => {
    await prom?.close();
    await mesh?.close();
  });

  it("answers every dashboard query with data, and alerts on nothing while the mesh is healthy", async () => {
    const client = mesh.replicas[0]?.client;
    for (let i = 0; i < 4; i++) await client?.consume({ decisions: [{ buckets: [{ policy: "login", key: "alice" }] }] });
    // Two scrapes after the traffic, so rates over it exist.
    await until("the denial to be scraped", 20_000, async () => {
      const r = await prom.query('sum(tokenmesh_decisions_total{result="denied"}) >= 2');
      return r.length === 1 ? true : undefined;
    });
    await prom.nextEvaluation();
    for (const q of dashboardQueries()) {
      if (q.expr.startsWith("label_values(") || ISSUE_15.test(q.expr)) continue;
      const result = await prom.query(expandGrafanaVariables(q.expr));
      expect(result.length, `${q.title}: ${q.expr}`).toBeGreaterThan(0);
    }
    const alerts = await prom.alerts();
    expect(alerts.filter((a) => a.state === "firing")).toEqual([]);
    expect(alerts.filter((a) => a.labels.alertname === "TokenmeshPeerDown")).toEqual([]);
  });

  it("fires TokenmeshPeerMessagesRejected when a replica of another cluster says hello", async () => {
    const r1 = mesh.replicas[0];
    if (r1 === undefined) throw new Error("no replica");
    const peerListen = (parse(readFileSync(r1.config, "utf8")) as { mesh: { peerListen: string } }).mesh.peerListen;
    expect(await helloFromAnotherCluster(peerListen)).toMatch(/cluster/);
    const alert = await until("TokenmeshPeerMessagesRejected firing", 30_000, async () =>
      (await prom.alerts()).find((a) => a.labels.alertname === "TokenmeshPeerMessagesRejected" && a.state === "firing"),
    );
    expect(alert.labels).toMatchObject({ instance: instance(0), reason: "handshake", severity: "warning", job: "tokenmesh" });
    expect(alert.annotations.summary).toBe(`${instance(0)} rejected peer streams (handshake)`);
  });

  it("puts TokenmeshPeerDown in pending on both survivors once a replica is killed", async () => {
    await mesh.kill(2);
    const pending = await until("TokenmeshPeerDown pending on both survivors", 30_000, async () => {
      const down = (await prom.alerts()).filter((a) => a.labels.alertname === "TokenmeshPeerDown");
      return down.length === 2 ? down : undefined;
    });
    const seen = pending.map((a) => [a.labels.instance, a.state, Number(a.value)]);
    const want = [instance(0), instance(1)].map((i) => [i, "pending", 1]);
    expect(seen.sort()).toEqual(want.sort());
  });
});
