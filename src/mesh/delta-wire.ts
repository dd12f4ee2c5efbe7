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
import { LEN, ProtoReader as Reader, VARINT, WireFormatError } from "../wire/proto-reader.ts";
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

/** A MergeRequest carrying `d` (slots relative to its send time), as protobuf-es would write it. */
export function encodeDeltaRequest(d: Delta): Uint8Array {
  const w = new Writer();
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

function expect(wireType: number, wanted: number, what: string): void {
  if (wireType !== wanted) throw new WireFormatError(`${what}: wire type ${wireType}, expected ${wanted}`);
}

/** Repeated numbers, packed (one LEN field) or one per field. */
function readRepeated(r: Reader, wireType: number, out: number[], read: (r: Reader) => number, what: string): void {
  if (wireType === LEN) {
    const s = r.sub();
    while (!s.done) out.push(read(s));
    return;
  }
  expect(wireType, VARINT, what);
  out.push(read(r));
}

const readUint = (r: Reader): number => r.uint();
const readSint = (r: Reader): number => r.sint();

function readLimit(r: Reader): Limit {
  const out = { version: 0, effectiveUs: 0, capacity: 0, refillTokens: 0, refillPeriodUs: 0 };
  while (!r.done) {
    const [field, wt] = r.tag();
    if (field >= 1 && field <= 5) {
      expect(wt, VARINT, "Limit");
      if (field === 1) out.version = r.uint();
      else if (field === 2) out.effectiveUs = r.int();
      else if (field === 3) out.capacity = r.uint();
      else if (field === 4) out.refillTokens = r.uint();
      else out.refillPeriodUs = r.uint();
    } else r.skip(wt);
  }
  return out;
}

/** Groups a flat list into rows of `width`; a ragged tail stays a short row for the core to reject. */
function rows(values: readonly number[], width: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < values.length; i += width) out.push(values.slice(i, i + width));
  return out;
}

function readPrefix(r: Reader): UntrustedPrefix {
  let tauUs = 0;
  let level = 0;
  let limit: Limit | undefined;
  const folded: number[] = [];
  let foldedSum = 0;
  let digest = 0;
  let lateCharged = 0;
  let forgiven = 0;
  while (!r.done) {
    const [field, wt] = r.tag();
    switch (field) {
      case 1:
        expect(wt, VARINT, "Prefix.tau_us");
        tauUs = r.int();
        break;
      case 2:
        expect(wt, VARINT, "Prefix.level");
        level = r.sint();
        break;
      case 3:
        expect(wt, LEN, "Prefix.limit");
        limit = readLimit(r.sub());
        break;
      case 4:
        readRepeated(r, wt, folded, readUint, "Prefix.folded");
        break;
      case 5:
        expect(wt, VARINT, "Prefix.folded_sum");
        foldedSum = r.uint();
        break;
      case 6:
        expect(wt, VARINT, "Prefix.digest");
        digest = r.uint();
        break;
      case 7:
        expect(wt, VARINT, "Prefix.late_charged");
        lateCharged = r.uint();
        break;
      case 8:
        expect(wt, VARINT, "Prefix.forgiven");
        forgiven = r.uint();
        break;
      default:
        r.skip(wt);
    }
  }
  return { tauUs, level, limit, folded: rows(folded, 2), foldedSum, digest, lateCharged, forgiven };
}

/** A key part as read; entries carry absolute slots. */
function readKey(r: Reader, base: number): UntrustedKeyDelta {
  let key = "";
  let limit: Limit | undefined;
  let prefix: UntrustedPrefix | undefined;
  const known: number[] = [];
  const flat: number[] = [];
  let horizonUs = 0;
  let partial = false;
  const demand: number[] = [];
  let headerOmitted = false;
  while (!r.done) {
    const [field, wt] = r.tag();
    switch (field) {
      case 1: {
        expect(wt, LEN, "KeyDelta.key");
        // Strict: a lossy decoding would merge distinct keys into one (every bad byte is U+FFFD).
        const text = r.utf8();
        if (text === undefined) throw new WireFormatError(`KeyDelta.key: ${r.rejectedLength} bytes that are not valid UTF-8`);
        key = text;
        break;
      }
      case 2:
        expect(wt, LEN, "KeyDelta.limit");
        limit = readLimit(r.sub());
        break;
      case 3:
        expect(wt, LEN, "KeyDelta.prefix");
        prefix = readPrefix(r.sub());
        break;
      case 4:
        readRepeated(r, wt, known, readUint, "KeyDelta.known");
        break;
      case 5:
        readRepeated(r, wt, flat, readSint, "KeyDelta.entries");
        break;
      case 6:
        expect(wt, VARINT, "KeyDelta.horizon_us");
        horizonUs = r.int();
        break;
      case 7:
        expect(wt, VARINT, "KeyDelta.partial");
        partial = r.bool();
        break;
      case 9:
        readRepeated(r, wt, demand, readUint, "KeyDelta.demand");
        break;
      case 8:
        expect(wt, VARINT, "KeyDelta.header_omitted");
        headerOmitted = r.bool();
        break;
      default:
        // Any other number is a newer peer's field.
        r.skip(wt);
    }
  }
  const entries = rows(flat, 4);
  for (const e of entries) if (e.length === 4) e[1] = (e[1] as number) + base;
  const part: UntrustedKeyDelta = { key, limit, prefix, known: rows(known, 2), entries, horizonUs, partial, headerOmitted };
  if (demand.length > 0) part.demand = rows(demand, 3);
  return part;
}

function readRecord(r: Reader): number[] {
  let index = 0;
  let wm = 0;
  let retired = 0;
  while (!r.done) {
    const [field, wt] = r.tag();
    if (field === 1) {
      expect(wt, VARINT, "IncarnationRecord.index");
      index = r.uint32();
    } else if (field === 2) {
      expect(wt, VARINT, "IncarnationRecord.watermark_us");
      wm = r.int();
    } else if (field === 3) {
      expect(wt, VARINT, "IncarnationRecord.retired_us");
      retired = r.sint();
    } else r.skip(wt);
  }
  return [index, wm, retired];
}

/**
 * The body of a Delta message, unchecked. Its keys are read after the header fields whatever
 * their order on the wire, because their slots are relative to `sent_at_us`. The bytes do not
 * name the sender: `node` is left empty for the transport to fill in from the authenticated
 * stream.
 */
export function decodeDelta(bytes: Uint8Array, start = 0, end = bytes.length): UntrustedDelta {
  const r = new Reader(bytes, start, end);
  let incarnation = "";
  let fromSeq = 0;
  let toSeq = 0;
  let sentAtUs = 0;
  let horizonUs = 0;
  const incarnations: string[] = [];
  const records: number[][] = [];
  const keyBodies: Reader[] = [];
  while (!r.done) {
    const [field, wt] = r.tag();
    switch (field) {
      case 1:
        expect(wt, LEN, "Delta.incarnation");
        incarnation = r.string();
        break;
      case 2:
        expect(wt, VARINT, "Delta.from_seq");
        fromSeq = r.uint();
        break;
      case 3:
        expect(wt, VARINT, "Delta.to_seq");
        toSeq = r.uint();
        break;
      case 4:
        expect(wt, VARINT, "Delta.sent_at_us");
        sentAtUs = r.int();
        break;
      case 5:
        expect(wt, VARINT, "Delta.horizon_us");
        horizonUs = r.int();
        break;
      case 6:
        expect(wt, LEN, "Delta.incarnations");
        incarnations.push(r.string());
        break;
      case 7:
        expect(wt, LEN, "Delta.records");
        records.push(readRecord(r.sub()));
        break;
      case 8:
        expect(wt, LEN, "Delta.keys");
        keyBodies.push(r.sub());
        break;
      default:
        r.skip(wt);
    }
  }
  const keys = keyBodies.map((body) => readKey(body, sentAtUs));
  return { node: "", incarnation, fromSeq, toSeq, sentAtUs, horizonUs, incarnations, records, keys };
}

/**
 * Where the Delta of a MergeRequest lies, or undefined when the request is not a delta (a hello,
 * or nothing). Throws when the oneof appears more than once: an encoder never writes that, and
 * merging two deltas field by field is not something a peer may ask of us.
 */
export function findDelta(bytes: Uint8Array): { start: number; end: number } | undefined {
  const r = new Reader(bytes, 0, bytes.length);
  let found: { start: number; end: number } | undefined;
  let bodies = 0;
  while (!r.done) {
    const [field, wt] = r.tag();
    if (field === 1 || field === 2) {
      expect(wt, LEN, "MergeRequest.message");
      bodies++;
      if (bodies > 1) throw new WireFormatError("MergeRequest: more than one message in the oneof");
      const body = r.sub();
      if (field === 2) found = { start: body.pos, end: body.end };
    } else r.skip(wt);
  }
  return found;
}
