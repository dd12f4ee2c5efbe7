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

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  /** A varint as a number; exact up to 2^53, which every field here is checked against later. */
  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error("premature end of input");
      const b = this.buf[this.pos++] as number;
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
    throw new Error("invalid varint");
  }

  /** A uint64 varint as a bigint (inline limits can be absurd: validation reports them). */
  varint64(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error("premature end of input");
      const b = this.buf[this.pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return BigInt.asUintN(64, result);
      shift += 7n;
    }
    throw new Error("invalid varint");
  }

  /** End offset of a length-delimited field that starts here. */
  lengthEnd(): number {
    const len = this.varint();
    const end = this.pos + len;
    if (end > this.end) throw new Error("premature end of input");
    return end;
  }

  string(): string {
    const end = this.lengthEnd();
    const s = this.buf.toString("utf8", this.pos, end);
    this.pos = end;
    return s;
  }

  skip(wire: number): void {
    if (wire === VARINT) this.varint();
    else if (wire === I64) this.pos += 8;
    else if (wire === LEN) this.pos = this.lengthEnd();
    else if (wire === I32) this.pos += 4;
    else throw new Error(`cannot skip wire type ${wire}`);
    if (this.pos > this.end) throw new Error("premature end of input");
  }
}

function readLimit(r: Reader, end: number): DecodedLimit {
  let capacity = 0n;
  let refillTokens = 0n;
  let refillPeriodMs = 0n;
  while (r.pos < end) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === VARINT && field === 1) capacity = r.varint64();
    else if (wire === VARINT && field === 2) refillTokens = r.varint64();
    else if (wire === VARINT && field === 3) refillPeriodMs = r.varint64();
    else r.skip(wire);
  }
  return { capacity, refillTokens, refillPeriodMs };
}

function readBucket(r: Reader, end: number): DecodedBucket {
  let policy = "";
  let key = "";
  let cost: number | undefined;
  let limit: DecodedLimit | undefined;
  while (r.pos < end) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === LEN && field === 1) policy = r.string();
    else if (wire === LEN && field === 2) key = r.string();
    // uint32: a larger varint keeps its low 32 bits, as every protobuf runtime does.
    else if (wire === VARINT && field === 3) cost = r.varint() % 2 ** 32;
    else if (wire === LEN && field === 4) {
      const limitEnd = r.lengthEnd();
      limit = readLimit(r, limitEnd);
      r.pos = limitEnd;
    } else r.skip(wire);
  }
  return { policy, key, cost, limit };
}

function readDecision(r: Reader, end: number): DecodedDecision {
  const buckets: DecodedBucket[] = [];
  while (r.pos < end) {
    const tag = r.varint();
    if (tag === ((1 << 3) | LEN)) {
      const bucketEnd = r.lengthEnd();
      buckets.push(readBucket(r, bucketEnd));
      r.pos = bucketEnd;
    } else r.skip(tag & 7);
  }
  return { buckets };
}

/** Decodes a ConsumeRequest or QueryRequest; throws on malformed input, like `fromBinary`. */
export function decodeDecisionRequest(bytes: Uint8Array): DecodedRequest {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const r = new Reader(buf, 0, buf.length);
  const decisions: DecodedDecision[] = [];
  let includeReplicas = false;
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === ((1 << 3) | LEN)) {
      const end = r.lengthEnd();
      decisions.push(readDecision(r, end));
      r.pos = end;
    } else if (tag === ((2 << 3) | VARINT)) includeReplicas = r.varint() !== 0;
    else r.skip(tag & 7);
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
