// A peer's message is input like any other. A stream that sends garbage, a malformed delta, an
// out-of-bounds count, too many keys, or an oversized message is cut off with a status naming
// the problem and counted; nothing of it is applied; the replicas keep serving and stay meshed.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { ChannelCredentials, type Metadata } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeltaSchema } from "../../src/gen/tokenmesh/v1/peer_pb.ts";
import { helloFor } from "../../src/mesh/handshake.ts";
import { dialPeer, encodeMergeRequest, type InboundResponse, MERGE_PATH, mergeMethod, type Sized } from "../../src/mesh/peer-transport.ts";
import { REJECT_REASON_TRAILER } from "../../src/mesh/stream-status.ts";
import { eventually, type InProcessMesh, type MeshReplica, startInProcessMesh } from "../support/mesh.ts";

type DeltaInit = MessageInitShape<typeof DeltaSchema>;
const INC = "0660e96f10d5b45e75258949e88b4509";
const now = () => BigInt(Date.now() * 1000);
const limit = { version: 0n, effectiveUs: 0n, capacity: 10n, refillTokens: 1n, refillPeriodUs: 1_000_000n };

function keyDelta(key: string, c1: bigint) {
  return {
    key,
    limit,
    prefix: { tauUs: 0n, level: 10_000_000n, limit },
    entries: [0n, -1000n, 0n, c1],
    partial: false,
  };
}

function delta(keys: NonNullable<DeltaInit["keys"]>, over: { fromSeq?: bigint; toSeq?: bigint } = {}): DeltaInit {
  return {
    incarnation: INC,
    fromSeq: 0n,
    toSeq: 1n,
    sentAtUs: now(),
    incarnations: [INC],
    records: [{ index: 0, watermarkUs: now() - 2000n, retiredUs: -1n }],
    keys,
    ...over,
  };
}

/** Sends `frames` (raw bytes) on a new Merge stream and reports the status it ended with. */
async function send(
  target: MeshReplica,
  frames: Uint8Array[],
): Promise<{ code: number | undefined; details: string; reason?: string; gotHello: boolean; acked?: boolean }> {
  const client = dialPeer(target.peerAddress, ChannelCredentials.createInsecure(), 64 << 20);
  try {
    return await new Promise((resolve) => {
      const stream = client.makeBidiStreamRequest(MERGE_PATH, mergeMethod.requestSerialize, mergeMethod.responseDeserialize);
      let gotHello = false;
      let acks = 0;
      const timer = setTimeout(() => {
        stream.cancel();
        resolve({ code: undefined, details: "no status within 5 s", gotHello });
      }, 5_000);
      stream.on("data", (m: Sized<InboundResponse>) => {
        if (m.message.case === "hello") gotHello = true;
        if (m.message.case === "ack" && ++acks >= frames.length - 1) {
          // An honest exchange stays open: an ack for every delta is the answer.
          clearTimeout(timer);
          stream.cancel();
          resolve({ code: undefined, details: "", gotHello, acked: true });
        }
      });
      stream.on("error", (e: Error & { code?: number; details?: string; metadata?: Metadata }) => {
        clearTimeout(timer);
        const reason = e.metadata?.get(REJECT_REASON_TRAILER)[0];
        resolve({ code: e.code, details: e.details ?? e.message, reason: reason?.toString(), gotHello });
      });
      for (const f of frames) stream.write(f);
    });
  } finally {
    client.close();
  }
}

const hello = (versions?: { min: number; max: number }) =>
  encodeMergeRequest({
    message: { case: "hello", value: helloFor({ cluster: "test", region: "x", node: "mallory", incarnation: INC, versions }) },
  });
/** A key part without its header (protocol 2). */
const entriesOnly = (key: string) => ({ key, entries: [0n, -1000n, 0n, 1n], headerOmitted: true });
const deltaFrame = (d: DeltaInit) => encodeMergeRequest({ message: { case: "delta", value: d } });

describe("a hostile peer", () => {
  let mesh: InProcessMesh;
  let target: MeshReplica;
  beforeAll(async () => {
    mesh = await startInProcessMesh({
      size: 2,
      policies: { api: { capacity: 10, refill: 1, per: "1s" } },
      mesh: () => ({ maxMessageBytes: 65536, maxNewKeysPerPeerPerSecond: 50 }),
    });
    target = mesh.replicas[0] as MeshReplica;
    await eventually(() => mesh.replicas.every((r) => r.server.mesh?.stats.connected.size === 1), 10_000, "mesh connected");
  });
  afterAll(async () => {
    await mesh.close();
  });

  it.each([
    {
      name: "a delta before the hello",
      frames: () => [deltaFrame(delta([keyDelta("api\u0000k", 3n)]))],
      code: 9,
      details: /^the first message of a Merge stream must be a hello$/,
      reason: "protocol",
    },
    {
      name: "an incarnation index out of range",
      frames: () => [
        hello(),
        deltaFrame(delta([keyDelta("api\u0000a", 3n), { ...keyDelta("api\u0000b", 3n), entries: [5n, -1000n, 0n, 3n] }])),
      ],
      code: 3,
      details: /^delta\.keys\[1\]\.entries\[0\]\[0\]/,
      reason: "invalid_delta",
    },
    {
      name: "a count near 2^64",
      frames: () => [hello(), deltaFrame(delta([keyDelta("api\u0000a", 3n), keyDelta("api\u0000c", 2n ** 62n)]))],
      code: 3,
      details: /^delta\.keys\[1\]\.entries\[0\]\[3\]/,
      reason: "invalid_delta",
    },
    {
      name: "more keys than a delta may carry",
      frames: () => [hello(), deltaFrame(delta(Array.from({ length: 10_001 }, (_, i) => keyDelta(`api\u0000f${i}`, 1n))))],
      code: 8, // the message is also over the 64 KiB cap: grpc-js refuses it first
      details: /larger than max/,
      reason: undefined, // refused by grpc-js before any handler sees it
    },
    {
      name: "a flood of new keys",
      frames: () => [
        hello(),
        deltaFrame(delta(Array.from({ length: 40 }, (_, i) => keyDelta(`api\u0000flood-a${i}`, 1n)))),
        deltaFrame(
          delta(
            Array.from({ length: 40 }, (_, i) => keyDelta(`api\u0000flood-b${i}`, 1n)),
            { fromSeq: 1n, toSeq: 2n },
          ),
        ),
      ],
      code: 8,
      details: /^delta\.keys: peer introduced 80 new keys within 1 s, more than mesh\.maxNewKeysPerPeerPerSecond \(50\)$/,
      reason: "key_flood",
    },
    {
      name: "a part without its header on a protocol 1 stream",
      frames: () => [hello({ min: 1, max: 1 }), deltaFrame(delta([keyDelta("api\u0000a", 3n), entriesOnly("api\u0000b")]))],
      code: 3,
      details: /^delta\.keys\[1\]\.header_omitted: set on a protocol 1 stream \(needs 2\)$/,
      reason: "invalid_delta",
    },
    {
      name: "a part marked header_omitted that carries a header",
      frames: () => [hello(), deltaFrame(delta([keyDelta("api\u0000a", 3n), { ...keyDelta("api\u0000b", 3n), headerOmitted: true }]))],
      code: 3,
      details: /^delta\.keys\[1\]\.headerOmitted: is set, yet the part carries a header/,
      reason: "invalid_delta",
    },
    {
      name: "bytes that are not protobuf",
      frames: () => [hello(), new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f])],
      code: 3,
      details: /^merge request: not a valid protobuf message: wire type 7, which these messages never use$/,
      reason: "invalid_delta",
    },
  ])("cuts off $name", async ({ frames, code, details, reason }) => {
    const before = [...(target.server.mesh?.stats.rejected.values() ?? [])].reduce((a, b) => a + b, 0);
    const r = await send(target, frames());
    expect(r.code).toBe(code);
    expect(r.details).toMatch(details);
    expect(r.reason).toBe(reason);
    if (!/larger than max/.test(r.details)) {
      const after = [...(target.server.mesh?.stats.rejected.values() ?? [])].reduce((a, b) => a + b, 0);
      expect(after).toBe(before + 1);
    }
    // Nothing of it was applied: the valid first key of a rejected delta is untouched.
    const q = await target.client.query({ decisions: [{ buckets: [{ policy: "api", key: "a" }] }] });
    expect(q.results[0]?.buckets[0]?.remaining).toBe(10n);
    // The replicas keep serving and stay meshed.
    expect(mesh.replicas.every((x) => x.server.mesh?.stats.connected.size === 1)).toBe(true);
  });

  it("applies a well-formed delta from an authenticated peer (the control case)", async () => {
    const r = await send(target, [hello(), deltaFrame(delta([keyDelta("api\u0000ok", 8n)]))]);
    expect(r).toMatchObject({ gotHello: true, acked: true });
    // 8 of 10 tokens taken; at 1 token/s at most a token or so has come back since.
    const q = await target.client.query({ decisions: [{ buckets: [{ policy: "api", key: "ok" }] }] });
    expect(q.results[0]?.buckets[0]?.remaining).toBeLessThanOrEqual(3n);
  });
});
