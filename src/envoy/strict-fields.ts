// The fields of a RateLimitRequest that a stock protobuf runtime would take lossily, read from
// the bytes before protobuf-es decodes them: a string that is not UTF-8 (protobuf-es throws,
// naming no field; a lenient runtime would turn each bad byte into U+FFFD, so descriptor values
// "\xff" and "\xfe" would share a bucket) and a hits_addend wider than its uint32 (protobuf-es
// keeps the low 32 bits: 2^32 + 5 would be charged as 5). Field numbers: Envoy's rls.proto.
//
//   RateLimitRequest     1: string domain, 2: repeated RateLimitDescriptor descriptors, 3: uint32 hits_addend
//   RateLimitDescriptor  1: repeated Entry entries
//   Entry                1: string key, 2: string value

import { notUtf8, UINT32_MAX } from "../server/request-decoder.ts";
import { LEN, type ProtoReader, VARINT } from "../wire/proto-reader.ts";

export interface LossyField {
  readonly field: string;
  readonly problem: string;
}

function entryProblem(r: ProtoReader, at: string): LossyField | undefined {
  while (!r.done) {
    const [field, wire] = r.tag();
    if (wire === LEN && (field === 1 || field === 2)) {
      if (r.utf8() === undefined) return { field: `${at}.${field === 1 ? "key" : "value"}`, problem: notUtf8(r) };
    } else r.skip(wire);
  }
  return undefined;
}

function descriptorProblem(r: ProtoReader, at: string): LossyField | undefined {
  let entry = 0;
  while (!r.done) {
    const [field, wire] = r.tag();
    if (wire === LEN && field === 1) {
      const found = entryProblem(r.sub(), `${at}.entries[${entry++}]`);
      if (found !== undefined) return found;
    } else r.skip(wire);
  }
  return undefined;
}

/** The first lossy field, or undefined; throws a WireFormatError on bytes that are not a message. */
export function lossyField(r: ProtoReader): LossyField | undefined {
  let descriptor = 0;
  while (!r.done) {
    const [field, wire] = r.tag();
    if (wire === LEN && field === 1) {
      if (r.utf8() === undefined) return { field: "domain", problem: notUtf8(r) };
    } else if (wire === LEN && field === 2) {
      const found = descriptorProblem(r.sub(), `descriptors[${descriptor++}]`);
      if (found !== undefined) return found;
    } else if (wire === VARINT && field === 3) {
      const value = r.bigUint();
      if (value > BigInt(UINT32_MAX)) return { field: "hits_addend", problem: `must be at most ${UINT32_MAX} (a uint32), got ${value}` };
    } else r.skip(wire);
  }
  return undefined;
}
