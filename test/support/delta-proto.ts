// The Peer protocol's Delta through protobuf-es, as the mesh did before src/mesh/delta-wire.ts:
// the reference the hand-written codec is tested against (test/mesh/delta-wire.test.ts).
// Outgoing, numbers become protobuf integers and slots travel relative to the send time;
// incoming, the message becomes the UntrustedDelta the core validates, without judging it.

import type { MessageInitShape } from "@bufbuild/protobuf";
import type {
  Delta as CoreDelta,
  KeyDelta as CoreKeyDelta,
  KeyPartDelta as CoreKeyPart,
  KeyConfig,
  UntrustedDelta,
  UntrustedKeyDelta,
  Limit as UntrustedLimit,
} from "../../src/core/crdt/index.ts";
import type { Delta, DeltaSchema, KeyDelta, KeyDeltaSchema, Limit, LimitSchema } from "../../src/gen/tokenmesh/v1/peer_pb.ts";

type LimitInit = MessageInitShape<typeof LimitSchema>;

function toLimit(c: KeyConfig): LimitInit {
  return {
    version: BigInt(c.version),
    effectiveUs: BigInt(c.tEff),
    capacity: BigInt(c.rate.capacity),
    refillTokens: BigInt(c.rate.refillTokens),
    refillPeriodUs: BigInt(c.rate.refillPeriodUs),
  };
}

function flatten(rows: readonly (readonly number[])[]): bigint[] {
  const out: bigint[] = [];
  for (const row of rows) for (const n of row) out.push(BigInt(n));
  return out;
}

export function deltaToProto(d: CoreDelta): MessageInitShape<typeof DeltaSchema> {
  const base = d.sentAtUs;
  return {
    incarnation: d.incarnation,
    fromSeq: BigInt(d.fromSeq),
    toSeq: BigInt(d.toSeq),
    sentAtUs: BigInt(base),
    horizonUs: BigInt(d.horizonUs),
    incarnations: [...d.incarnations],
    records: d.records.map(([index, wm, retired]) => ({ index, watermarkUs: BigInt(wm), retiredUs: BigInt(retired) })),
    keys: d.keys.map((k: CoreKeyPart) =>
      k.headerOmitted === true
        ? {
            key: k.key,
            entries: flatten(k.entries.map(([inc, slot, c0, c1]) => [inc, slot - base, c0, c1])),
            partial: k.partial,
            headerOmitted: true,
          }
        : wholeToProto(k, base),
    ),
  };
}

function wholeToProto(k: CoreKeyDelta, base: number): MessageInitShape<typeof KeyDeltaSchema> {
  return {
    key: k.key,
    limit: toLimit(k.limit),
    prefix: {
      tauUs: BigInt(k.prefix.tauUs),
      level: BigInt(k.prefix.level),
      limit: toLimit(k.prefix.limit),
      folded: flatten(k.prefix.folded),
      foldedSum: BigInt(k.prefix.foldedSum),
      digest: BigInt(k.prefix.digest),
      lateCharged: BigInt(k.prefix.lateCharged),
      forgiven: BigInt(k.prefix.forgiven),
    },
    known: flatten(k.known),
    entries: flatten(k.entries.map(([inc, slot, c0, c1]) => [inc, slot - base, c0, c1])),
    horizonUs: BigInt(k.horizonUs),
    partial: k.partial,
    demand: flatten(k.demand ?? []),
  };
}

const num = (v: bigint): number => Number(v);

function fromLimit(l: Limit | undefined): UntrustedLimit | undefined {
  if (l === undefined) return undefined;
  return {
    version: num(l.version),
    effectiveUs: num(l.effectiveUs),
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

function keyFromProto(k: KeyDelta, base: number): UntrustedKeyDelta {
  const p = k.prefix;
  return {
    key: k.key,
    limit: fromLimit(k.limit),
    prefix:
      p === undefined
        ? undefined
        : {
            tauUs: num(p.tauUs),
            level: num(p.level),
            limit: fromLimit(p.limit),
            folded: rows(p.folded, 2),
            foldedSum: num(p.foldedSum),
            digest: num(p.digest),
            lateCharged: num(p.lateCharged),
            forgiven: num(p.forgiven),
          },
    known: rows(k.known, 2),
    entries: rows(k.entries, 4, (r) => (r.length === 4 ? [r[0] as number, (r[1] as number) + base, r[2] as number, r[3] as number] : r)),
    horizonUs: num(k.horizonUs),
    partial: k.partial,
    ...(k.demand.length > 0 ? { demand: rows(k.demand, 3) } : {}),
    headerOmitted: k.headerOmitted,
  };
}

/** The UntrustedDelta the core's `applyDelta` validates; `node` is the authenticated peer's name. */
export function deltaFromProto(d: Delta, node: string): UntrustedDelta {
  const base = num(d.sentAtUs);
  return {
    node,
    incarnation: d.incarnation,
    fromSeq: num(d.fromSeq),
    toSeq: num(d.toSeq),
    sentAtUs: base,
    horizonUs: num(d.horizonUs),
    incarnations: d.incarnations,
    records: d.records.map((r) => [r.index, num(r.watermarkUs), num(r.retiredUs)]),
    keys: d.keys.map((k) => keyFromProto(k, base)),
  };
}
