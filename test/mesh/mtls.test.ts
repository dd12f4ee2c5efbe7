// Peers are authenticated before any state is accepted: replicas with certificates from the
// cluster CA connect and replicate; a client with a certificate from another CA is refused at
// the TLS layer; a replica whose hello names someone other than its certificate is refused and
// counted.

import { ChannelCredentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { helloFor } from "../../src/mesh/handshake.ts";
import { dialPeer, encodeMergeRequest, type InboundResponse, MERGE_PATH, mergeMethod, type Sized } from "../../src/mesh/peer-transport.ts";
import { eventually, type InProcessMesh, startInProcessMesh } from "../support/mesh.ts";
import { makeTestPki, type TestPki } from "../support/test-certs.ts";

const policies = { api: { capacity: 10, refill: 1, per: "1s" } };

/** Opens a Merge stream with the given credentials, says hello, and reports how it ended. */
async function tryMerge(
  address: string,
  credentials: ChannelCredentials,
  node: string,
): Promise<{ hello: boolean; error?: string; code?: number }> {
  const client = dialPeer(address, credentials, 1 << 20);
  try {
    return await new Promise((resolve) => {
      const stream = client.makeBidiStreamRequest(MERGE_PATH, mergeMethod.requestSerialize, mergeMethod.responseDeserialize);
      let hello = false;
      const timer = setTimeout(() => {
        stream.cancel();
        resolve({ hello, error: "timeout" });
      }, 5_000);
      stream.on("data", (m: Sized<InboundResponse>) => {
        if (m.message.case === "hello") hello = true;
      });
      stream.on("error", (e: Error & { code?: number }) => {
        clearTimeout(timer);
        resolve({ hello, error: e.message, ...(e.code === undefined ? {} : { code: e.code }) });
      });
      stream.write(
        encodeMergeRequest({
          message: {
            case: "hello",
            value: helloFor({ cluster: "test", region: "x", node, incarnation: "0660e96f10d5b45e75258949e88b4509" }),
          },
        }),
      );
      // A legitimate stream stays open: end ours after the hello came back, to finish the probe.
      setTimeout(() => {
        if (hello) {
          clearTimeout(timer);
          stream.cancel();
          resolve({ hello });
        }
      }, 1_000);
    });
  } finally {
    client.close();
  }
}

describe("mutual TLS between replicas", () => {
  let pki: TestPki;
  let mesh: InProcessMesh;
  beforeAll(async () => {
    pki = makeTestPki();
    mesh = await startInProcessMesh({ size: 2, policies, tls: (name) => pki.replica(name) });
  });
  afterAll(async () => {
    await mesh.close();
  });

  it("connects replicas of the cluster CA and replicates between them", async () => {
    const [a, b] = mesh.replicas as [NonNullable<(typeof mesh.replicas)[0]>, NonNullable<(typeof mesh.replicas)[1]>];
    await eventually(
      () => a.server.mesh?.stats.connected.size === 1 && b.server.mesh?.stats.connected.size === 1,
      10_000,
      "both replicas connected",
    );
    await eventually(
      async () =>
        (await a.client.consume({ decisions: [{ buckets: [{ policy: "api", key: "tls", cost: 7 }] }] })).results[0]?.allowed === true,
      5_000,
      "a admits",
    );
    await eventually(
      async () =>
        (await b.client.query({ decisions: [{ buckets: [{ policy: "api", key: "tls" }] }] })).results[0]?.buckets[0]?.remaining === 3n,
      5_000,
      "b sees a's consumption",
    );
  });

  it("refuses a client whose certificate another CA signed", async () => {
    const impostor = pki.impostor("r9");
    const creds = ChannelCredentials.createSsl(pki.read(impostor.ca), pki.read(impostor.key), pki.read(impostor.cert));
    const r = await tryMerge(mesh.replicas[0]?.peerAddress as string, creds, "r9");
    expect(r.hello).toBe(false);
    expect(r.code).toBe(14); // UNAVAILABLE: the TLS handshake failed
  });

  it("refuses a client without a certificate", async () => {
    const ca = pki.read(pki.replica("r8").ca);
    const r = await tryMerge(mesh.replicas[0]?.peerAddress as string, ChannelCredentials.createSsl(ca), "r8");
    expect(r.hello).toBe(false);
    expect(r.code).toBe(14);
  });

  it("refuses a cluster member whose hello claims another name, and counts it", async () => {
    const files = pki.replica("r7");
    const creds = ChannelCredentials.createSsl(pki.read(files.ca), pki.read(files.key), pki.read(files.cert));
    const target = mesh.replicas[0];
    const r = await tryMerge(target?.peerAddress as string, creds, "r2");
    expect(r.hello).toBe(false);
    expect(r.code).toBe(7); // PERMISSION_DENIED
    expect(r.error).toContain('hello.node: "r2" does not match the peer certificate\'s common name "r7"');
    expect(target?.server.mesh?.stats.rejected.get("handshake")).toBeGreaterThanOrEqual(1);
    // The legitimate peer is still connected.
    expect(target?.server.mesh?.stats.connected.size).toBe(1);
  });
});
