// The Peer protocol's Delta through protobuf-es, as the mesh did before src/mesh/delta-wire.ts:
// the reference the hand-written codec is tested against (test/mesh/delta-wire.test.ts).
// Outgoing, numbers become protobuf integers and slots travel relative to the send time;
// incoming, the message becomes the plain shape the core parses, without judging it.

import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Delta as CoreDelta, WireKey } from "../../src/core/crdt/index.ts";
import type { WireConfig } from "../../src/core/crdt/key-config.ts";
import type { Delta, DeltaSchema, KeyDelta, Limit, LimitSchema } from "../../src/gen/tokenmesh/v1/peer_pb.ts";

type LimitInit = MessageInitShape<typeof LimitSchema>;

function toLimit(c: WireConfig): LimitInit {
  return {
    version: BigInt(c.version),
    effectiveUs: BigInt(c.tEff),
    capacity: BigInt(c.capacity),
    refillTokens: BigInt(c.refillTokens),
    refillPeriodUs: BigInt(c.refillPeriodUs),
  };
}

function flatten(rows: readonly (readonly number[])[]): bigint[] {
  const out: bigint[] = [];
  for (const row of rows) for (const n of row) out.push(BigInt(n));
  return out;
}

export function deltaToProto(d: CoreDelta): MessageInitShape<typeof DeltaSchema> {
  const base = d.sentAt;
  return {
    incarnation: d.inc,
    fromSeq: BigInt(d.from),
    toSeq: BigInt(d.to),
    sentAtUs: BigInt(base),
    horizonUs: BigInt(d.horizon),
    incarnations: [...d.incs],
    records: d.records.map(([index, wm, retired]) => ({ index, watermarkUs: BigInt(wm), retiredUs: BigInt(retired) })),
    keys: d.keys.map((k: WireKey) => ({
      key: k.key,
      limit: toLimit(k.config),
      prefix: {
        tauUs: BigInt(k.prefix.tau),
        level: BigInt(k.prefix.level),
        limit: toLimit(k.prefix.config),
        folded: flatten(k.prefix.F),
        foldedSum: BigInt(k.prefix.sumF),
        digest: BigInt(k.prefix.digest),
        lateCharged: BigInt(k.prefix.lateCharged),
        forgiven: BigInt(k.prefix.forgiven),
      },
      known: flatten(k.K),
      entries: flatten(k.entries.map(([inc, slot, c0, c1]) => [inc, slot - base, c0, c1])),
      horizonUs: BigInt(k.horizon),
      partial: k.partial,
    })),
  };
}

const num = (v: bigint): number => Number(v);

function fromLimit(l: Limit | undefined): unknown {
  if (l === undefined) return undefined;
  return {
    version: num(l.version),
    tEff: num(l.effectiveUs),
    capacity: num(l.capacity),
    refillTokens: num(l.refillTokens),
    refillPeriodUs: num(l.refillPeriodUs),
  };
}

/** Groups a flat list into rows of `width`; a ragged tail stays a short row for the core to reject. */
function rows(values: readonly bigint[], width: number, map: (row: number[]) => number[] = (r) => r): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < values.length; i += width) out.push(map(values.slice(i, i + width).map(num)));
  return out;
}

function keyFromProto(k: KeyDelta, base: number): unknown {
  const p = k.prefix;
  return {
    key: k.key,
    config: fromLimit(k.limit),
    prefix:
      p === undefined
        ? undefined
        : {
            tau: num(p.tauUs),
            level: num(p.level),
            config: fromLimit(p.limit),
            F: rows(p.folded, 2),
            sumF: num(p.foldedSum),
            digest: num(p.digest),
            lateCharged: num(p.lateCharged),
            forgiven: num(p.forgiven),
          },
    K: rows(k.known, 2),
    entries: rows(k.entries, 4, (r) => (r.length === 4 ? [r[0] as number, (r[1] as number) + base, r[2] as number, r[3] as number] : r)),
    horizon: num(k.horizonUs),
    partial: k.partial,
  };
}

/** The plain object the core's `applyDelta` validates; `node` is the authenticated peer's name. */
export function deltaFromProto(d: Delta, node: string): unknown {
  const base = num(d.sentAtUs);
  return {
    kind: "delta",
    node,
    inc: d.incarnation,
    from: num(d.fromSeq),
    to: num(d.toSeq),
    sentAt: base,
    horizon: num(d.horizonUs),
    incs: d.incarnations,
    records: d.records.map((r) => [r.index, num(r.watermarkUs), num(r.retiredUs)]),
    keys: d.keys.map((k) => keyFromProto(k, base)),
  };
}
