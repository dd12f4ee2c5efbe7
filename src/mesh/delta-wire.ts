// The Delta message of the Peer protocol, written and read by hand (proto/tokenmesh/v1/peer.proto,
// protobuf wire format: https://protobuf.dev/programming-guides/encoding/).
//
// Why by hand: a mesh replica under load spent about half of its CPU in protobuf-es building,
// writing, reading and collecting Delta messages (one KeyDelta, Prefix and two Limits per key,
// with every integer a bigint), and the translation around them: more than the
// decisions themselves. Here the core's Delta goes straight to bytes, and bytes straight to
// the UntrustedDelta the core validates (`validateDelta`), with JavaScript numbers throughout.
//
// It is the same encoding: the writer's bytes equal protobuf-es's for every delta the core
// makes, and the reader gives what the protobuf-es path (test/support/delta-proto.ts) gives for any message
// protobuf-es can write (test/mesh/delta-wire.test.ts checks both). Like any protobuf reader
// it skips unknown fields (a newer peer's additions) and takes repeated numbers packed or not.
// Bytes that are not a message (a truncated varint, a length past the end, a group, a known
// field with the wrong wire type) throw a WireFormatError, which the transport turns into
// INVALID_ARGUMENT on that stream. The reader never judges values: a count near 2^64 reaches
// the core as a number it rejects. The byte-level reader and writer are src/wire/'s.

import type {
  Delta,
  KeyConfig,
  KeyDelta,
  KeyEntriesDelta,
  KeyPartDelta,
  Limit,
  UntrustedDelta,
  UntrustedKeyDelta,
  UntrustedPrefix,
} from "../core/crdt/index.ts";
import { LEN, ProtoReader as Reader, StringCache, VARINT, WireFormatError } from "../wire/proto-reader.ts";
import { ProtoWriter as Writer } from "../wire/proto-writer.ts";

export { WireFormatError };

function writeLimit(w: Writer, field: number, c: KeyConfig): void {
  const at = w.begin(field);
  w.intField(1, c.version);
  w.intField(2, c.tEff);
  w.intField(3, c.rate.capacity);
  w.intField(4, c.rate.refillTokens);
  w.intField(5, c.rate.refillPeriodUs);
  w.end(at);
}

function writePacked(w: Writer, field: number, rows: readonly (readonly number[])[]): void {
  if (rows.length === 0) return;
  const at = w.begin(field);
  for (const row of rows) for (const n of row) w.int(n);
  w.end(at);
}

function writeEntries(w: Writer, entries: KeyDelta["entries"], base: number): void {
  if (entries.length === 0) return;
  const eat = w.begin(5);
  for (const [inc, slot, c0, c1] of entries) {
    w.sint(inc);
    w.sint(slot - base);
    w.sint(c0);
    w.sint(c1);
  }
  w.end(eat);
}

/** A part without its header: key, entries, partial, header_omitted (field order, as protobuf-es writes). */
function writeEntriesOnly(w: Writer, k: KeyEntriesDelta, base: number): void {
  const at = w.begin(8);
  if (k.key !== "") w.string(1, k.key);
  writeEntries(w, k.entries, base);
  w.boolField(7, k.partial);
  w.boolField(8, true);
  w.end(at);
}

function writeKey(w: Writer, k: KeyPartDelta, base: number): void {
  if (k.headerOmitted === true) {
    writeEntriesOnly(w, k, base);
    return;
  }
  const at = w.begin(8);
  if (k.key !== "") w.string(1, k.key);
  writeLimit(w, 2, k.limit);
  const p = k.prefix;
  const pat = w.begin(3);
  w.intField(1, p.tauUs);
  w.sintField(2, p.level);
  writeLimit(w, 3, p.limit);
  writePacked(w, 4, p.folded);
  w.intField(5, p.foldedSum);
  w.intField(6, p.digest);
  w.intField(7, p.lateCharged);
  w.intField(8, p.forgiven);
  w.end(pat);
  writePacked(w, 4, k.known);
  writeEntries(w, k.entries, base);
  w.intField(6, k.horizonUs);
  w.boolField(7, k.partial);
  if (k.demand !== undefined) writePacked(w, 9, k.demand);
  w.end(at);
}

/** One writer for every delta of the process (encoding is synchronous; bytes() copies out). */
const deltaWriter = new Writer(16_384);

/** A MergeRequest carrying `d` (slots relative to its send time), as protobuf-es would write it. */
export function encodeDeltaRequest(d: Delta): Uint8Array {
  const w = deltaWriter.reset();
  const base = d.sentAtUs;
  const at = w.begin(2);
  if (d.incarnation !== "") w.string(1, d.incarnation);
  w.intField(2, d.fromSeq);
  w.intField(3, d.toSeq);
  w.intField(4, base);
  w.intField(5, d.horizonUs);
  for (const id of d.incarnations) w.string(6, id);
  for (const [index, wm, retired] of d.records) {
    const rat = w.begin(7);
    w.intField(1, index);
    w.intField(2, wm);
    w.sintField(3, retired);
    w.end(rat);
  }
  for (const k of d.keys) writeKey(w, k, base);
  w.end(at);
  return w.bytes();
}

// Reading. A delta is read in one pass with one reader: nested messages are entered in place
// (`enter`/`leave`, no sub-reader per message), tags are switched on whole (field << 3 | wire
// type: the expected wire type is one case, anything else goes to `other`), repeated numbers
// are read straight into their rows, and the incarnation ids a stream repeats in every delta
// come from a StringCache. A one-key delta is ~150 bytes, so what is allocated per field, not
// the bytes, was most of its decoding cost.

/** A field with an unexpected wire type: refused if `wanted` names the field here, else skipped. */
function other(r: Reader, t: number, wanted: readonly (number | undefined)[], names: readonly string[]): void {
  const field = t >>> 3;
  const wt = t & 7;
  const want = wanted[field];
  if (want !== undefined) throw new WireFormatError(`${names[field]}: wire type ${wt}, expected ${want}`);
  r.skip(wt);
}

function expect(wireType: number, wanted: number, what: string): void {
  if (wireType !== wanted) throw new WireFormatError(`${what}: wire type ${wireType}, expected ${wanted}`);
}

/**
 * Repeated numbers into rows of `width` (packed, one LEN field, or one number per field): a
 * ragged tail stays a short row for the core to reject. `signed` reads zigzag varints.
 */
function readRows(r: Reader, wireType: number, out: number[][], width: number, signed: boolean, what: string): void {
  if (wireType === LEN) {
    const outer = r.enter();
    while (!r.done) pushValue(out, width, signed ? r.sint() : r.uint());
    r.leave(outer);
    return;
  }
  expect(wireType, VARINT, what);
  pushValue(out, width, signed ? r.sint() : r.uint());
}

function pushValue(out: number[][], width: number, n: number): void {
  const last = out[out.length - 1];
  if (last !== undefined && last.length < width) last.push(n);
  else out.push([n]);
}

const LIMIT_WANTED: readonly (number | undefined)[] = [undefined, VARINT, VARINT, VARINT, VARINT, VARINT];
const LIMIT_NAMES = ["", "Limit", "Limit", "Limit", "Limit", "Limit"];

function readLimit(r: Reader): Limit {
  const outer = r.enter();
  let version = 0;
  let effectiveUs = 0;
  let capacity = 0;
  let refillTokens = 0;
  let refillPeriodUs = 0;
  while (!r.done) {
    const t = r.nextTag();
    switch (t) {
      case 8 /* 1, VARINT */:
        version = r.uint();
        break;
      case 16 /* 2, VARINT */:
        effectiveUs = r.int();
        break;
      case 24 /* 3, VARINT */:
        capacity = r.uint();
        break;
      case 32 /* 4, VARINT */:
        refillTokens = r.uint();
        break;
      case 40 /* 5, VARINT */:
        refillPeriodUs = r.uint();
        break;
      default:
        other(r, t, LIMIT_WANTED, LIMIT_NAMES);
    }
  }
  r.leave(outer);
  return { version, effectiveUs, capacity, refillTokens, refillPeriodUs };
}

const PREFIX_WANTED: readonly (number | undefined)[] = [undefined, VARINT, VARINT, LEN, VARINT, VARINT, VARINT, VARINT, VARINT];
const PREFIX_NAMES = [
  "",
  "Prefix.tau_us",
  "Prefix.level",
  "Prefix.limit",
  "Prefix.folded",
  "Prefix.folded_sum",
  "Prefix.digest",
  "Prefix.late_charged",
  "Prefix.forgiven",
];

function readPrefix(r: Reader): UntrustedPrefix {
  const outer = r.enter();
  let tauUs = 0;
  let level = 0;
  let limit: Limit | undefined;
  const folded: number[][] = [];
  let foldedSum = 0;
  let digest = 0;
  let lateCharged = 0;
  let forgiven = 0;
  while (!r.done) {
    const t = r.nextTag();
    switch (t) {
      case 8 /* 1, VARINT */:
        tauUs = r.int();
        break;
      case 16 /* 2, VARINT */:
        level = r.sint();
        break;
      case 26 /* 3, LEN */:
        limit = readLimit(r);
        break;
      case 34 /* 4, LEN */:
      case 32 /* 4, VARINT */:
        readRows(r, t & 7, folded, 2, false, "Prefix.folded");
        break;
      case 40 /* 5, VARINT */:
        foldedSum = r.uint();
        break;
      case 48 /* 6, VARINT */:
        digest = r.uint();
        break;
      case 56 /* 7, VARINT */:
        lateCharged = r.uint();
        break;
      case 64 /* 8, VARINT */:
        forgiven = r.uint();
        break;
      default:
        // Field 4 takes packed or unpacked numbers: any other wire type is refused like the rest.
        other(r, t, PREFIX_WANTED, PREFIX_NAMES);
    }
  }
  r.leave(outer);
  return { tauUs, level, limit, folded, foldedSum, digest, lateCharged, forgiven };
}

const KEY_WANTED: readonly (number | undefined)[] = [undefined, LEN, LEN, LEN, VARINT, VARINT, VARINT, VARINT, VARINT, VARINT];
const KEY_NAMES = [
  "",
  "KeyDelta.key",
  "KeyDelta.limit",
  "KeyDelta.prefix",
  "KeyDelta.known",
  "KeyDelta.entries",
  "KeyDelta.horizon_us",
  "KeyDelta.partial",
  "KeyDelta.header_omitted",
  "KeyDelta.demand",
];

/** A key part as read, between `start` and `end`; entries carry absolute slots (`base` added). */
function readKey(r: Reader, start: number, end: number, base: number): UntrustedKeyDelta {
  r.pos = start;
  r.end = end;
  let key = "";
  let limit: Limit | undefined;
  let prefix: UntrustedPrefix | undefined;
  const known: number[][] = [];
  const entries: number[][] = [];
  let horizonUs = 0;
  let partial = false;
  let demand: number[][] | undefined;
  let headerOmitted = false;
  while (!r.done) {
    const t = r.nextTag();
    switch (t) {
      case 10 /* 1, LEN */:
        {
          // Strict: a lossy decoding would merge distinct keys into one (every bad byte is U+FFFD).
          const text = r.utf8();
          if (text === undefined) throw new WireFormatError(`KeyDelta.key: ${r.rejectedLength} bytes that are not valid UTF-8`);
          key = text;
          break;
        }
      case 18 /* 2, LEN */:
        limit = readLimit(r);
        break;
      case 26 /* 3, LEN */:
        prefix = readPrefix(r);
        break;
      case 34 /* 4, LEN */:
      case 32 /* 4, VARINT */:
        readRows(r, t & 7, known, 2, false, "KeyDelta.known");
        break;
      case 42 /* 5, LEN */:
      case 40 /* 5, VARINT */:
        readRows(r, t & 7, entries, 4, true, "KeyDelta.entries");
        break;
      case 48 /* 6, VARINT */:
        horizonUs = r.int();
        break;
      case 56 /* 7, VARINT */:
        partial = r.bool();
        break;
      case 64 /* 8, VARINT */:
        headerOmitted = r.bool();
        break;
      case 74 /* 9, LEN */:
      case 72 /* 9, VARINT */:
        demand ??= [];
        readRows(r, t & 7, demand, 3, false, "KeyDelta.demand");
        break;
      default:
        // Any other number is a newer peer's field.
        other(r, t, KEY_WANTED, KEY_NAMES);
    }
  }
  for (const e of entries) if (e.length === 4) e[1] = (e[1] as number) + base;
  const part: UntrustedKeyDelta = { key, limit, prefix, known, entries, horizonUs, partial, headerOmitted };
  if (demand !== undefined && demand.length > 0) part.demand = demand;
  return part;
}

const RECORD_WANTED: readonly (number | undefined)[] = [undefined, VARINT, VARINT, VARINT];
const RECORD_NAMES = ["", "IncarnationRecord.index", "IncarnationRecord.watermark_us", "IncarnationRecord.retired_us"];

function readRecord(r: Reader): number[] {
  const outer = r.enter();
  let index = 0;
  let wm = 0;
  let retired = 0;
  while (!r.done) {
    const t = r.nextTag();
    switch (t) {
      case 8 /* 1, VARINT */:
        index = r.uint32();
        break;
      case 16 /* 2, VARINT */:
        wm = r.int();
        break;
      case 24 /* 3, VARINT */:
        retired = r.sint();
        break;
      default:
        other(r, t, RECORD_WANTED, RECORD_NAMES);
    }
  }
  r.leave(outer);
  return [index, wm, retired];
}

const DELTA_WANTED: readonly (number | undefined)[] = [undefined, LEN, VARINT, VARINT, VARINT, VARINT, LEN, LEN, LEN];
const DELTA_NAMES = [
  "",
  "Delta.incarnation",
  "Delta.from_seq",
  "Delta.to_seq",
  "Delta.sent_at_us",
  "Delta.horizon_us",
  "Delta.incarnations",
  "Delta.records",
  "Delta.keys",
];

/**
 * Incarnation ids as decoded strings, shared by every stream of this process: ids are few (one
 * per replica and restart), bounded here, and a hit is exactly the decoded text.
 */
const incarnationIds = new StringCache(32, 64);

/**
 * The body of a Delta message, unchecked. Its keys are read after the header fields whatever
 * their order on the wire, because their slots are relative to `sent_at_us`. The bytes do not
 * name the sender: `node` is left empty for the transport to fill in from the authenticated
 * stream (the object is the caller's, so it may set it in place).
 */
export function decodeDelta(bytes: Uint8Array, start = 0, end = bytes.length): UntrustedDelta {
  return readDelta(new Reader(bytes, start, end));
}

/** The Delta body between `r.pos` and `r.end`. */
function readDelta(r: Reader): UntrustedDelta {
  let incarnation = "";
  let fromSeq = 0;
  let toSeq = 0;
  let sentAtUs = 0;
  let horizonUs = 0;
  const incarnations: string[] = [];
  const records: number[][] = [];
  // [start, end) of each key part's body, read once sent_at_us is known.
  let keySpans: number[] | undefined;
  while (!r.done) {
    const t = r.nextTag();
    switch (t) {
      case 10 /* 1, LEN */:
        incarnation = r.cachedString(incarnationIds);
        break;
      case 16 /* 2, VARINT */:
        fromSeq = r.uint();
        break;
      case 24 /* 3, VARINT */:
        toSeq = r.uint();
        break;
      case 32 /* 4, VARINT */:
        sentAtUs = r.int();
        break;
      case 40 /* 5, VARINT */:
        horizonUs = r.int();
        break;
      case 50 /* 6, LEN */:
        incarnations.push(r.cachedString(incarnationIds));
        break;
      case 58 /* 7, LEN */:
        records.push(readRecord(r));
        break;
      case 66 /* 8, LEN */:
        {
          const outer = r.enter();
          keySpans ??= [];
          keySpans.push(r.pos, r.end);
          r.leave(outer);
          break;
        }
      default:
        other(r, t, DELTA_WANTED, DELTA_NAMES);
    }
  }
  const keys: UntrustedKeyDelta[] = [];
  if (keySpans !== undefined)
    for (let i = 0; i < keySpans.length; i += 2) keys.push(readKey(r, keySpans[i] as number, keySpans[i + 1] as number, sentAtUs));
  return { node: "", incarnation, fromSeq, toSeq, sentAtUs, horizonUs, incarnations, records, keys };
}

/**
 * Where the Delta of a MergeRequest lies, or undefined when the request is not a delta (a hello,
 * or nothing). Throws when the oneof appears more than once: an encoder never writes that, and
 * merging two deltas field by field is not something a peer may ask of us.
 */
export function findDelta(bytes: Uint8Array): { start: number; end: number } | undefined {
  const r = new Reader(bytes, 0, bytes.length);
  const start = deltaStart(r);
  return start < 0 ? undefined : { start, end: r.end };
}

/**
 * Scans a MergeRequest (the whole of `r`) for its oneof: the start of the Delta body, with
 * `r.end` set to the body's end, or -1 when the request is not a delta. Throws as `findDelta`.
 */
function deltaStart(r: Reader): number {
  let start = -1;
  let end = -1;
  let bodies = 0;
  while (!r.done) {
    const t = r.nextTag();
    const field = t >>> 3;
    if (field === 1 || field === 2) {
      expect(t & 7, LEN, "MergeRequest.message");
      bodies++;
      if (bodies > 1) throw new WireFormatError("MergeRequest: more than one message in the oneof");
      const outer = r.enter();
      if (field === 2) {
        start = r.pos;
        end = r.end;
      }
      r.leave(outer);
    } else r.skip(t & 7);
  }
  if (start >= 0) {
    r.pos = start;
    r.end = end;
  }
  return start;
}

/**
 * The Delta of a MergeRequest, decoded (what `findDelta` and `decodeDelta` give, with one
 * reader), or undefined when the request is not a delta. Throws as they do.
 */
export function readDeltaRequest(bytes: Uint8Array): UntrustedDelta | undefined {
  const r = new Reader(bytes, 0, bytes.length);
  return deltaStart(r) < 0 ? undefined : readDelta(r);
}
