// Encodes Consume/Query requests and decodes their responses straight between the client's own
// shapes and protobuf bytes, framed as gRPC messages.
//
// The messages are small and fixed, and the reflective protobuf-es path (init objects, `create`,
// `toBinary`, then `fromBinary` into messages of bigints) cost more than the rest of a batched
// decision on the client. A test checks the bytes equal protobuf-es's for random requests and
// that decoding agrees with `fromBinary`. Field numbers: proto/tokenmesh/v1/rate_limiter.proto.
//
//   Request        1: repeated Decision decisions
//   Decision       1: repeated BucketRequest buckets
//   BucketRequest  1: string policy, 2: string key, 3: optional uint32 cost, 4: InlineLimit limit
//   InlineLimit    1: capacity, 2: refill_tokens, 3: refill_period_ms (uint64)
//   Response       1: repeated DecisionResult results
//   DecisionResult 1: bool allowed, 2: uint64 retry_after_us, 3: repeated BucketStatus buckets
//   BucketStatus   1: remaining, 2: retry_after_us, 3: reset_after_us, 4: capacity,
//                  5: refill_tokens, 6: refill_period_ms (uint64), 7: replicas (skipped here)

import type { BucketRequest } from "../types.js";
import { fieldOf, ProtoReader, wireOf } from "./proto-reader.js";

export interface WireBucketStatus {
  readonly remaining: number;
  readonly retryAfterUs: number;
  readonly resetAfterUs: number;
  readonly capacity: number;
  readonly refillTokens: number;
  readonly refillPeriodMs: number;
}

export interface WireResult {
  readonly allowed: boolean;
  readonly retryAfterUs: number;
  readonly buckets: readonly WireBucketStatus[];
}

const LEN = 2;
const VARINT = 0;

const varintSize = (n: number): number => {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
};

/** A buffer sized exactly in a first pass, so no write ever has to grow or move it. */
class Writer {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  varint(n: number): void {
    const b = this.buf;
    while (n >= 0x80) {
      b[this.pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    b[this.pos++] = n;
  }

  tag(field: number, wire: number): void {
    this.buf[this.pos++] = (field << 3) | wire;
  }

  string(field: number, s: string, bytes: number): void {
    this.tag(field, LEN);
    this.varint(bytes);
    this.pos += this.buf.write(s, this.pos, bytes, "utf8");
  }
}

const limitSize = (b: BucketRequest): number => {
  const l = b.limit;
  if (l === undefined) return 0;
  let size = 0;
  for (const v of [l.capacity, l.refillTokens, l.refillPeriodMs]) if (v !== 0) size += 1 + varintSize(v);
  return size;
};

/**
 * A framed gRPC message (5-byte prefix, then the ConsumeRequest or QueryRequest, which share
 * field 1) holding one Decision per item. Values are assumed checked (validate.ts): positive
 * integers within their protobuf types.
 */
export function encodeDecisionRequest(items: readonly (readonly BucketRequest[])[]): Buffer {
  // First pass: every length, so the second pass writes each prefix before its body.
  const sizes: number[] = [];
  let total = 0;
  for (const buckets of items) {
    let decision = 0;
    for (const b of buckets) {
      const policy = Buffer.byteLength(b.policy, "utf8");
      const key = Buffer.byteLength(b.key, "utf8");
      const limit = limitSize(b);
      let bucket = 1 + varintSize(policy) + policy + 1 + varintSize(key) + key;
      if (b.cost !== undefined) bucket += 1 + varintSize(b.cost);
      if (b.limit !== undefined) bucket += 1 + varintSize(limit) + limit;
      sizes.push(policy, key, limit, bucket);
      decision += 1 + varintSize(bucket) + bucket;
    }
    sizes.push(decision);
    total += 1 + varintSize(decision) + decision;
  }
  const w = new Writer(Buffer.allocUnsafe(5 + total));
  w.buf[0] = 0; // not compressed
  w.buf.writeUInt32BE(total, 1);
  w.pos = 5;
  let s = 0;
  for (const buckets of items) {
    // The decision's size follows its buckets' four sizes each.
    w.tag(1, LEN);
    w.varint(sizes[s + buckets.length * 4] as number);
    for (const b of buckets) {
      const [policy, key, limit, bucket] = [sizes[s] as number, sizes[s + 1] as number, sizes[s + 2] as number, sizes[s + 3] as number];
      s += 4;
      w.tag(1, LEN);
      w.varint(bucket);
      w.string(1, b.policy, policy);
      w.string(2, b.key, key);
      if (b.cost !== undefined) {
        w.tag(3, VARINT);
        w.varint(b.cost);
      }
      if (b.limit !== undefined) {
        w.tag(4, LEN);
        w.varint(limit);
        const l = b.limit;
        ([l.capacity, l.refillTokens, l.refillPeriodMs] as const).forEach((v, i) => {
          if (v === 0) return;
          w.tag(i + 1, VARINT);
          w.varint(v);
        });
      }
    }
    s++;
  }
  return w.buf;
}

function readStatus(r: ProtoReader): WireBucketStatus {
  const v = [0, 0, 0, 0, 0, 0];
  while (!r.done) {
    const tag = r.tag();
    const field = fieldOf(tag);
    if (wireOf(tag) === VARINT && field >= 1 && field <= 6) v[field - 1] = r.uint();
    else r.skip(wireOf(tag));
  }
  const [remaining, retryAfterUs, resetAfterUs, capacity, refillTokens, refillPeriodMs] = v as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return { remaining, retryAfterUs, resetAfterUs, capacity, refillTokens, refillPeriodMs };
}

function readResult(r: ProtoReader): WireResult {
  let allowed = false;
  let retryAfterUs = 0;
  const buckets: WireBucketStatus[] = [];
  while (!r.done) {
    const tag = r.tag();
    if (tag === (1 << 3) + VARINT) allowed = r.uint() !== 0;
    else if (tag === (2 << 3) + VARINT) retryAfterUs = r.uint();
    else if (tag === (3 << 3) + LEN) buckets.push(readStatus(r.sub()));
    else r.skip(wireOf(tag));
  }
  return { allowed, retryAfterUs, buckets };
}

/** Decodes a ConsumeResponse or QueryResponse (unframed); throws a WireFormatError on bad bytes. */
export function decodeDecisionResponse(bytes: Uint8Array): WireResult[] {
  const r = new ProtoReader(bytes, 0, bytes.length);
  const results: WireResult[] = [];
  while (!r.done) {
    const tag = r.tag();
    if (tag === (1 << 3) + LEN) results.push(readResult(r.sub()));
    else r.skip(wireOf(tag));
  }
  return results;
}
