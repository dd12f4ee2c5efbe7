// Decodes Consume/Query requests straight from protobuf bytes into plain objects.
//
// protobuf-es's reflective `fromBinary` took about 15% of the server's CPU on 100-decision calls
// (bench/, docs/performance.md); these two messages are small and fixed, so they are read by
// hand. A property test checks the result equals `fromBinary`'s for random requests, including
// unknown fields, which are skipped as the protobuf spec requires. Field numbers:
// proto/tokenmesh/v1/rate_limiter.proto.
//
//   Request        1: repeated Decision decisions, 2: bool include_replicas (QueryRequest)
//   Decision       1: repeated BucketRequest buckets
//   BucketRequest  1: string policy, 2: string key, 3: optional uint32 cost, 4: InlineLimit limit
//   InlineLimit    1: uint64 capacity, 2: uint64 refill_tokens, 3: uint64 refill_period_ms
//
// Stricter than a stock protobuf runtime where leniency would merge buckets or change a charge:
// a string that is not valid UTF-8 is refused (lossy decoding turns every bad byte into U+FFFD,
// so keys "\xff" and "\xfe" would share a bucket), and a cost that does not fit in its uint32
// is refused (a runtime keeps the low 32 bits: 2^32 + 5 would be charged as 5). Either way the
// bucket is marked `invalid` and the validator answers INVALID_ARGUMENT naming the field.

import { LEN, ProtoReader, VARINT } from "../wire/proto-reader.ts";

export interface DecodedLimit {
  readonly capacity: bigint;
  readonly refillTokens: bigint;
  readonly refillPeriodMs: bigint;
}

export interface DecodedBucket {
  readonly policy: string;
  readonly key: string;
  readonly cost: number | undefined;
  readonly limit: DecodedLimit | undefined;
  /** A field whose bytes cannot be taken as they are (the first one), and why. */
  readonly invalid?: { readonly field: "policy" | "key" | "cost"; readonly problem: string };
}

export interface DecodedDecision {
  readonly buckets: DecodedBucket[];
}

export interface DecodedRequest {
  readonly decisions: DecodedDecision[];
  readonly includeReplicas: boolean;
  /** Set when the bytes were not a valid message: the handler answers INVALID_ARGUMENT. */
  readonly malformed?: string;
}

function readLimit(r: ProtoReader): DecodedLimit {
  let capacity = 0n;
  let refillTokens = 0n;
  let refillPeriodMs = 0n;
  while (!r.done) {
    const [field, wire] = r.tag();
    if (wire === VARINT && field === 1) capacity = r.bigUint();
    else if (wire === VARINT && field === 2) refillTokens = r.bigUint();
    else if (wire === VARINT && field === 3) refillPeriodMs = r.bigUint();
    else r.skip(wire);
  }
  return { capacity, refillTokens, refillPeriodMs };
}

export const UINT32_MAX = 0xffff_ffff;

/** The problem with a string `r.utf8()` just refused, naming its bytes. */
export function notUtf8(r: ProtoReader): string {
  const hex = [...r.rejected].map((b) => b.toString(16).padStart(2, "0")).join(" ");
  const more = r.rejectedLength > r.rejected.length ? " ..." : "";
  return `must be valid UTF-8; got ${r.rejectedLength} bytes that are not (${hex}${more})`;
}

function readBucket(r: ProtoReader): DecodedBucket {
  let policy = "";
  let key = "";
  let cost: number | undefined;
  let limit: DecodedLimit | undefined;
  let invalid: DecodedBucket["invalid"];
  while (!r.done) {
    const [field, wire] = r.tag();
    if (wire === LEN && (field === 1 || field === 2)) {
      const text = r.utf8();
      if (text === undefined) invalid ??= { field: field === 1 ? "policy" : "key", problem: notUtf8(r) };
      else if (field === 1) policy = text;
      else key = text;
    } else if (wire === VARINT && field === 3) {
      // The whole varint: a stock runtime would keep the low 32 bits of a larger one.
      const at = r.pos;
      cost = r.uint();
      if (cost > UINT32_MAX) {
        r.pos = at;
        invalid ??= { field: "cost", problem: `must be at most ${UINT32_MAX} (a uint32), got ${r.bigUint()}` };
      }
    } else if (wire === LEN && field === 4) limit = readLimit(r.sub());
    else r.skip(wire);
  }
  return invalid === undefined ? { policy, key, cost, limit } : { policy, key, cost, limit, invalid };
}

function readDecision(r: ProtoReader): DecodedDecision {
  const buckets: DecodedBucket[] = [];
  while (!r.done) {
    const [field, wire] = r.tag();
    if (wire === LEN && field === 1) buckets.push(readBucket(r.sub()));
    else r.skip(wire);
  }
  return { buckets };
}

/** Decodes a ConsumeRequest or QueryRequest; throws on malformed input, like `fromBinary`. */
export function decodeDecisionRequest(bytes: Uint8Array): DecodedRequest {
  const r = new ProtoReader(bytes, 0, bytes.length);
  const decisions: DecodedDecision[] = [];
  let includeReplicas = false;
  while (!r.done) {
    const [field, wire] = r.tag();
    if (wire === LEN && field === 1) decisions.push(readDecision(r.sub()));
    else if (wire === VARINT && field === 2) includeReplicas = r.bool();
    else r.skip(wire);
  }
  return { decisions, includeReplicas };
}

/**
 * The server's deserializer: never throws, so that bytes that are not a valid message reach the
 * handler and get INVALID_ARGUMENT naming the problem (grpc-js would answer INTERNAL).
 */
export function decodeOrMark(bytes: Uint8Array): DecodedRequest {
  try {
    return decodeDecisionRequest(bytes);
  } catch (err) {
    return { decisions: [], includeReplicas: false, malformed: (err as Error).message };
  }
}
