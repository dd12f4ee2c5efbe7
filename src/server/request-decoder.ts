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

function readBucket(r: ProtoReader): DecodedBucket {
  let policy = "";
  let key = "";
  let cost: number | undefined;
  let limit: DecodedLimit | undefined;
  while (!r.done) {
    const [field, wire] = r.tag();
    if (wire === LEN && field === 1) policy = r.string();
    else if (wire === LEN && field === 2) key = r.string();
    // uint32: a larger varint keeps its low 32 bits, as every protobuf runtime does.
    else if (wire === VARINT && field === 3) cost = r.uint32();
    else if (wire === LEN && field === 4) limit = readLimit(r.sub());
    else r.skip(wire);
  }
  return { policy, key, cost, limit };
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
