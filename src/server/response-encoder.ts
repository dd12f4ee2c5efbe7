// Encodes Consume/Query responses straight from the core's outcomes to protobuf bytes.
//
// The reflective path (build init objects with BigInts, `create`, `toBinary`) spent about a
// third of the server's CPU on a 100-decision call, mostly in allocation and GC. The messages
// are small and fixed (ConsumeResponse and QueryResponse share the same shape), so they are
// written here by hand; a test checks the bytes equal protobuf-es's `toBinary` for random
// outcomes. Field numbers: proto/tokenmesh/v1/rate_limiter.proto.
//
//   Response        1: repeated DecisionResult results
//   DecisionResult  1: bool allowed, 2: uint64 retry_after_us, 3: repeated BucketStatus buckets
//   BucketStatus    1: remaining, 2: retry_after_us, 3: reset_after_us, 4: capacity,
//                   5: refill_tokens, 6: refill_period_ms (all uint64),
//                   7: repeated ReplicaShare replicas
//   ReplicaShare    1: string node, 2: string incarnation, 3: uint64 consumed, 4: uint64 lag_us,
//                   5: bool retired, 6: bool local

import type { DecisionOutcome } from "../core/decision.ts";
import type { ReplicaShareInfo, ValidDecision } from "../limiter/limiter.ts";

/** What a handler returns: the validated decisions and their outcomes, encoded on send. */
export interface DecisionAnswers {
  readonly decisions: readonly ValidDecision[];
  readonly outcomes: readonly DecisionOutcome[];
  /** Per decision, per bucket: each writer's part (Query with include_replicas). */
  readonly shares?: readonly (readonly (readonly ReplicaShareInfo[])[])[];
}

const LEN = 2;
const VARINT = 0;
const tag = (field: number, wire: number): number => (field << 3) | wire;

/** Bytes of a varint holding a non-negative safe integer. */
function varintSize(n: number): number {
  let size = 1;
  let v = n;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    size++;
  }
  return size;
}

/** Bytes of a uint64 field, or 0 when proto3 omits it (value 0). */
const fieldSize = (n: number): number => (n === 0 ? 0 : 1 + varintSize(n));

const utf8 = new TextEncoder();

/** A length-delimited string field, or nothing when empty (proto3 default). */
function stringSize(bytes: Uint8Array): number {
  return bytes.length === 0 ? 0 : 1 + varintSize(bytes.length) + bytes.length;
}

const boolSize = (b: boolean): number => (b ? 2 : 0);

interface EncodedShare {
  readonly node: Uint8Array;
  readonly incarnation: Uint8Array;
  readonly share: ReplicaShareInfo;
  readonly size: number;
}

function encodeShare(share: ReplicaShareInfo): EncodedShare {
  const node = utf8.encode(share.node);
  const incarnation = utf8.encode(share.incarnation);
  const size =
    stringSize(node) +
    stringSize(incarnation) +
    fieldSize(share.consumed) +
    fieldSize(share.lagUs) +
    boolSize(share.retired) +
    boolSize(share.local);
  return { node, incarnation, share, size };
}

class Writer {
  readonly bytes: Uint8Array;
  pos = 0;
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
  }
  varint(n: number): void {
    let v = n;
    while (v >= 0x80) {
      this.bytes[this.pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.bytes[this.pos++] = v;
  }
  field(fieldNo: number, n: number): void {
    if (n === 0) return;
    this.bytes[this.pos++] = tag(fieldNo, VARINT);
    this.varint(n);
  }
  bool(fieldNo: number, b: boolean): void {
    if (!b) return;
    this.bytes[this.pos++] = tag(fieldNo, VARINT);
    this.bytes[this.pos++] = 1;
  }
  string(fieldNo: number, bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.bytes[this.pos++] = tag(fieldNo, LEN);
    this.varint(bytes.length);
    this.bytes.set(bytes, this.pos);
    this.pos += bytes.length;
  }
  share(e: EncodedShare): void {
    this.bytes[this.pos++] = tag(7, LEN);
    this.varint(e.size);
    this.string(1, e.node);
    this.string(2, e.incarnation);
    this.field(3, e.share.consumed);
    this.field(4, e.share.lagUs);
    this.bool(5, e.share.retired);
    this.bool(6, e.share.local);
  }
}

function periodMs(periodUs: number): number {
  return Math.ceil(periodUs / 1000);
}

function bucketSize(d: ValidDecision, o: DecisionOutcome, j: number, shares: readonly EncodedShare[] | undefined): number {
  const r = o.buckets[j] as DecisionOutcome["buckets"][number];
  const rate = (d[j] as ValidDecision[number]).rate;
  let size =
    fieldSize(r.remaining) +
    fieldSize(r.retryAfterUs) +
    fieldSize(r.resetAfterUs) +
    fieldSize(rate.capacity) +
    fieldSize(rate.refillTokens) +
    fieldSize(periodMs(rate.refillPeriodUs));
  if (shares !== undefined) for (const e of shares) size += 1 + varintSize(e.size) + e.size;
  return size;
}

export function encodeDecisionAnswers(answers: DecisionAnswers): Uint8Array {
  const { decisions, outcomes } = answers;
  const n = outcomes.length;
  const encodedShares = answers.shares?.map((perDecision) => perDecision.map((perBucket) => perBucket.map(encodeShare)));
  // First pass: sizes, because every nested message is length-prefixed.
  const bucketSizes: number[] = [];
  const resultSizes = new Array<number>(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const d = decisions[i] as ValidDecision;
    const o = outcomes[i] as DecisionOutcome;
    let size = (o.allowed ? 2 : 0) + fieldSize(o.retryAfterUs);
    for (let j = 0; j < o.buckets.length; j++) {
      const b = bucketSize(d, o, j, encodedShares?.[i]?.[j]);
      bucketSizes.push(b);
      size += 1 + varintSize(b) + b;
    }
    resultSizes[i] = size;
    total += 1 + varintSize(size) + size;
  }
  const w = new Writer(total);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const d = decisions[i] as ValidDecision;
    const o = outcomes[i] as DecisionOutcome;
    w.bytes[w.pos++] = tag(1, LEN);
    w.varint(resultSizes[i] as number);
    if (o.allowed) {
      w.bytes[w.pos++] = tag(1, VARINT);
      w.bytes[w.pos++] = 1;
    }
    w.field(2, o.retryAfterUs);
    for (let j = 0; j < o.buckets.length; j++) {
      const r = o.buckets[j] as DecisionOutcome["buckets"][number];
      const rate = (d[j] as ValidDecision[number]).rate;
      w.bytes[w.pos++] = tag(3, LEN);
      w.varint(bucketSizes[k++] as number);
      w.field(1, r.remaining);
      w.field(2, r.retryAfterUs);
      w.field(3, r.resetAfterUs);
      w.field(4, rate.capacity);
      w.field(5, rate.refillTokens);
      w.field(6, periodMs(rate.refillPeriodUs));
      for (const e of encodedShares?.[i]?.[j] ?? []) w.share(e);
    }
  }
  return w.bytes;
}
