// A peer's identity is its certificate, not the address it was dialled at: DNS discovery hands
// out pod IPs that no certificate (cert-manager's included) can name in advance. Replicas whose
// certificates name only DNS names still mesh when dialled by IP; the cluster CA and the
// common name = node rule still decide who is admitted (test/mesh/mtls.test.ts).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, type InProcessMesh, startInProcessMesh } from "../support/mesh.ts";
import { makeTestPki } from "../support/test-certs.ts";

const policies = { api: { capacity: 10, refill: 1, per: "1s" } };

describe("peer identity over mutual TLS", () => {
  let mesh: InProcessMesh;
  beforeAll(async () => {
    const pki = makeTestPki();
    // Names like a Kubernetes StatefulSet's; the replicas dial each other at 127.0.0.1.
    mesh = await startInProcessMesh({
      size: 2,
      policies,
      tls: (name) => pki.replica(name, `DNS:${name}.tokenmesh-peer.tokenmesh.svc.cluster.local`),
    });
  });
  afterAll(async () => {
    await mesh.close();
  });

  it("connects replicas dialled at an address their certificates do not name", async () => {
    const [a, b] = mesh.replicas;
    await eventually(
      () => a?.server.mesh?.stats.connected.size === 1 && b?.server.mesh?.stats.connected.size === 1,
      10_000,
      "both replicas connected",
    );
    expect([...(a?.server.mesh?.stats.connected ?? [])]).toEqual(["r2"]);
    expect([...(b?.server.mesh?.stats.connected ?? [])]).toEqual(["r1"]);
  });
});
