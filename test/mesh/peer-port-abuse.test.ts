// What reaches the peer port without ever being a peer: a stream with no hello, bytes that are
// not HTTP/2 (at once, or after the preface), a silent connection, more connections than
// mesh.maxConnections, and with mesh.tls a plaintext client, one with another CA's certificate
// and one with none. Each is closed and counted under its reason (TLS refusals also logged, at
// most once per 10 s), nothing of it is applied, and the real peers stay connected.

import { createConnection, type Socket } from "node:net";
import { Writable } from "node:stream";
import { ChannelCredentials } from "@grpc/grpc-js";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RejectReason } from "../../src/mesh/mesh-stats.ts";
import { dialPeer, MERGE_PATH, mergeMethod } from "../../src/mesh/peer-transport.ts";
import { eventually, type InProcessMesh, type MeshReplica, startInProcessMesh } from "../support/mesh.ts";
import { openRawStreams } from "../support/raw-grpc.ts";
import { makeTestPki, type TestPki } from "../support/test-certs.ts";

const policies = { api: { capacity: 10, refill: 1, per: "1s" } };
const HELLO_MS = 400;
const PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

const rejected = (r: MeshReplica, reason: RejectReason): number => r.server.mesh?.stats.rejected.get(reason) ?? 0;

/** Connects, writes `bytes`, and resolves with how long the server took to close the socket. */
function closedAfter(port: number, bytes: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const s: Socket = createConnection(port, "127.0.0.1", () => {
      if (bytes !== undefined) s.write(bytes);
    });
    s.on("error", () => {});
    s.once("close", () => resolve(Date.now() - started));
    setTimeout(() => reject(new Error("still open after 5 s")), 5_000).unref();
  });
}

const portOf = (r: MeshReplica): number => Number(r.peerAddress.split(":")[1]);

async function stillMeshed(mesh: InProcessMesh): Promise<void> {
  const [a, b] = mesh.replicas as [MeshReplica, MeshReplica];
  expect(a.server.mesh?.stats.connected.size).toBe(1);
  expect(b.server.mesh?.stats.connected.size).toBe(1);
  expect(a.server.mesh?.replica.keyCount).toBe(0);
}

describe("the peer port, insecure mode", () => {
  let mesh: InProcessMesh;
  beforeAll(async () => {
    mesh = await startInProcessMesh({ size: 2, policies, mesh: () => ({ helloTimeout: `${HELLO_MS}ms`, maxConnections: 6 }) });
    const [a, b] = mesh.replicas as [MeshReplica, MeshReplica];
    await eventually(() => a.server.mesh?.stats.connected.size === 1 && b.server.mesh?.stats.connected.size === 1, 10_000, "meshed");
  });
  afterAll(async () => {
    await mesh.close();
  });

  it("closes a Merge stream that sends no hello within mesh.helloTimeout, and counts it", async () => {
    const target = mesh.replicas[0] as MeshReplica;
    const before = rejected(target, "hello_timeout");
    const client = dialPeer(target.peerAddress, ChannelCredentials.createInsecure(), 1 << 20);
    try {
      const ended = await new Promise<{ code: number; details: string; ms: number }>((resolve) => {
        const started = Date.now();
        const stream = client.makeBidiStreamRequest(MERGE_PATH, mergeMethod.requestSerialize, mergeMethod.responseDeserialize);
        stream.on("data", () => {});
        stream.on("error", (e: Error & { code: number; details: string }) =>
          resolve({ code: e.code, details: e.details, ms: Date.now() - started }),
        );
      });
      expect(ended.code).toBe(4); // DEADLINE_EXCEEDED
      expect(ended.details).toBe(`no valid hello within ${HELLO_MS} ms`);
      expect(ended.ms).toBeGreaterThanOrEqual(HELLO_MS - 50);
    } finally {
      client.close();
    }
    expect(rejected(target, "hello_timeout")).toBe(before + 1);
    await stillMeshed(mesh);
  });

  it("lets one connection open only a few Merge streams, and closes those that never say hello", async () => {
    const target = mesh.replicas[0] as MeshReplica;
    const before = rejected(target, "hello_timeout");
    const resets = await openRawStreams(portOf(target), MERGE_PATH, 500, HELLO_MS + 300);
    // Streams beyond the 8 a peer connection may hold are reset at once; the 8 time out.
    expect(resets.length).toBeGreaterThanOrEqual(492);
    await eventually(() => rejected(target, "hello_timeout") === before + 8, 2_000, "8 hello timeouts");
    await stillMeshed(mesh);
  });

  it.each([
    ["an HTTP/1.1 request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["TLS to a plaintext port", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"],
    ["junk after the HTTP/2 preface", `${PREFACE}garbage that is not a frame`],
  ])("closes a connection that sends %s at once, and counts it", async (_what, bytes) => {
    const target = mesh.replicas[0] as MeshReplica;
    const before = rejected(target, "not_http2");
    const ms = await closedAfter(portOf(target), bytes);
    expect(ms).toBeLessThan(HELLO_MS);
    expect(rejected(target, "not_http2")).toBe(before + 1);
    await stillMeshed(mesh);
  });

  it("closes a connection that sends nothing once the hello timeout passes", async () => {
    const target = mesh.replicas[0] as MeshReplica;
    const before = rejected(target, "not_http2");
    expect(await closedAfter(portOf(target), undefined)).toBeGreaterThanOrEqual(HELLO_MS - 50);
    expect(rejected(target, "not_http2")).toBe(before + 1);
  });

  it("holds at most mesh.maxConnections connections (none is authenticated here), refusing the rest at once", async () => {
    const target = mesh.replicas[0] as MeshReplica;
    const before = rejected(target, "too_many_connections");
    const held: Socket[] = [];
    try {
      // The other replica holds one; 5 more fill the bound of 6; the next 3 are refused.
      for (let i = 0; i < 8; i++) {
        const s = createConnection(portOf(target), "127.0.0.1");
        s.on("error", () => {});
        held.push(s);
        await new Promise((resolve) => s.once("connect", resolve));
      }
      await eventually(() => rejected(target, "too_many_connections") === before + 3, 2_000, "3 refused");
    } finally {
      for (const s of held) s.destroy();
    }
    await stillMeshed(mesh);
  });
});

describe("the peer port with mesh.tls", () => {
  let pki: TestPki;
  let mesh: InProcessMesh;
  const lines: Record<string, unknown>[] = [];
  beforeAll(async () => {
    pki = makeTestPki();
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split("\n")) if (l.startsWith("{")) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    mesh = await startInProcessMesh({
      size: 2,
      policies,
      tls: (name) => pki.replica(name),
      mesh: () => ({ helloTimeout: `${HELLO_MS}ms` }),
      log: (i) => (i === 0 ? pino({ level: "warn" }, sink) : pino({ level: "silent" })),
    });
    const [a, b] = mesh.replicas as [MeshReplica, MeshReplica];
    await eventually(() => a.server.mesh?.stats.connected.size === 1 && b.server.mesh?.stats.connected.size === 1, 10_000, "meshed");
  });
  afterAll(async () => {
    await mesh.close();
  });

  it("counts and logs (once per 10 s) TLS refusals: plaintext, another CA, no certificate", async () => {
    const target = mesh.replicas[0] as MeshReplica;
    const before = rejected(target, "tls");
    await closedAfter(portOf(target), `${PREFACE}\x00\x00\x00\x04\x00\x00\x00\x00\x00`);
    const tryTls = async (creds: ChannelCredentials): Promise<void> => {
      const client = dialPeer(target.peerAddress, creds, 1 << 20);
      await new Promise<void>((resolve) => {
        const stream = client.makeBidiStreamRequest(MERGE_PATH, mergeMethod.requestSerialize, mergeMethod.responseDeserialize);
        stream.on("data", () => {});
        stream.on("error", () => resolve());
      });
      client.close();
    };
    const impostor = pki.impostor("r9");
    await tryTls(ChannelCredentials.createSsl(pki.read(impostor.ca), pki.read(impostor.key), pki.read(impostor.cert)));
    await tryTls(ChannelCredentials.createSsl(pki.read(pki.replica("r8").ca)));
    // grpc-js retries a failed handshake, so each client may count more than once.
    expect(rejected(target, "tls")).toBeGreaterThanOrEqual(before + 3);
    const tlsLines = lines.filter((l) => l.reason === "tls");
    expect(tlsLines.length).toBe(1);
    expect(tlsLines[0]).toMatchObject({ level: 40, msg: "peer connection refused", reason: "tls" });
    expect(String(tlsLines[0]?.message)).not.toBe("");
    await stillMeshed(mesh);
  });
});
