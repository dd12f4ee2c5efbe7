// Reads protobuf wire format (https://protobuf.dev/programming-guides/encoding/) for the
// messages tokenmesh decodes by hand: one reader per message body, varints as JavaScript numbers
// (exact to 2^53; larger ones come out approximate, for validation to refuse) or as bigints,
// and unknown fields skipped. Bytes that are not a message throw a WireFormatError.

import { isUtf8 } from "node:buffer";

const TWO_32 = 4_294_967_296;
const NO_BYTES = new Uint8Array(0);

export const VARINT = 0;
export const FIXED64 = 1;
export const LEN = 2;
export const FIXED32 = 5;

/** Bytes that are not a protobuf message. */
export class WireFormatError extends Error {}

const TRUNCATED = "premature end of input";

/** Reads one message's fields between `pos` and `end`. */
export class ProtoReader {
  /** `buf` as a Buffer, for UTF-8 reads: made once per message and shared with sub-readers. */
  private readonly text: Buffer;
  /** The start (up to 16 bytes) of the last string `utf8()` refused, and its whole length. */
  rejected: Uint8Array = NO_BYTES;
  rejectedLength = 0;

  constructor(
    readonly buf: Uint8Array,
    public pos: number,
    /** Where the message being read ends: moved in and out by `enter` and `leave`. */
    public end: number,
    text?: Buffer,
  ) {
    this.text = text ?? (Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength));
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** The low and high 32-bit halves of the next varint. */
  private lo = 0;
  private hi = 0;

  private varint(): void {
    const b = this.buf;
    let lo = 0;
    let hi = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireFormatError(TRUNCATED);
      const byte = b[this.pos++] as number;
      if (shift < 28) lo |= (byte & 0x7f) << shift;
      else if (shift === 28) {
        lo |= (byte & 0x0f) << 28;
        hi |= (byte & 0x7f) >>> 4;
      } else hi |= (byte & 0x7f) << (shift - 32);
      if (byte < 0x80) {
        this.lo = lo >>> 0;
        this.hi = hi >>> 0;
        return;
      }
      shift += 7;
    }
    throw new WireFormatError("varint longer than 10 bytes");
  }

  uint(): number {
    // Most varints of these messages (tags, lengths, small counts) are one byte.
    const pos = this.pos;
    if (pos < this.end) {
      const byte = this.buf[pos] as number;
      if (byte < 0x80) {
        this.pos = pos + 1;
        return byte;
      }
    }
    this.varint();
    return this.hi * TWO_32 + this.lo;
  }

  /** int64: two's complement. */
  int(): number {
    this.varint();
    if ((this.hi & 0x80000000) === 0) return this.hi * TWO_32 + this.lo;
    return -((~this.hi >>> 0) * TWO_32 + (~this.lo >>> 0) + 1);
  }

  /** uint64 as a bigint, for fields a caller must see whole however absurd (then validates). */
  bigUint(): bigint {
    this.varint();
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  uint32(): number {
    this.varint();
    return this.lo;
  }

  sint(): number {
    this.varint();
    const negative = (this.lo & 1) === 1;
    const lo = ((this.lo >>> 1) | ((this.hi & 1) << 31)) >>> 0;
    const magnitude = (this.hi >>> 1) * TWO_32 + lo;
    return negative ? -magnitude - 1 : magnitude;
  }

  bool(): boolean {
    this.varint();
    return this.lo !== 0 || this.hi !== 0;
  }

  /**
   * The next field's tag, `field << 3 | wireType` (field 0 throws): what `tag()` reads, without
   * an array, for readers that switch on the whole tag.
   */
  nextTag(): number {
    const pos = this.pos;
    let t: number;
    if (pos < this.end && (this.buf[pos] as number) < 0x80) {
      t = this.buf[pos] as number;
      this.pos = pos + 1;
    } else t = this.uint32();
    if (t >>> 3 === 0) throw new WireFormatError("field number 0");
    return t;
  }

  /**
   * Enters a length-delimited field's body in place (no sub-reader): reads up to its end, and
   * returns the enclosing end for `leave` to restore.
   */
  enter(): number {
    const len = this.uint();
    if (len > this.end - this.pos) throw new WireFormatError(TRUNCATED);
    const outer = this.end;
    this.end = this.pos + len;
    return outer;
  }

  /** Leaves the body `enter` entered (skipping what was not read of it). */
  leave(outer: number): void {
    this.pos = this.end;
    this.end = outer;
  }

  /** The next field's number and wire type, as [field, wireType]. */
  tag(): [number, number] {
    const t = this.uint32();
    const field = t >>> 3;
    if (field === 0) throw new WireFormatError("field number 0");
    return [field, t & 7];
  }

  /** A length-delimited field's body: a sub-reader over it. */
  sub(): ProtoReader {
    const len = this.uint();
    if (len > this.end - this.pos) throw new WireFormatError(TRUNCATED);
    const r = new ProtoReader(this.buf, this.pos, this.pos + len, this.text);
    this.pos += len;
    return r;
  }

  /** A length-delimited field's bounds, [start, end), with the reader moved past it. */
  private span(): number {
    const len = this.uint();
    if (len > this.end - this.pos) throw new WireFormatError(TRUNCATED);
    const start = this.pos;
    this.pos = start + len;
    return start;
  }

  /** A string field, decoded lossily (invalid bytes become U+FFFD): only where that cannot matter. */
  string(): string {
    const start = this.span();
    return this.text.toString("utf8", start, this.pos);
  }

  /**
   * A string field decoded lossily, or the cached text of equal bytes (`cache`): for the few
   * strings a stream repeats in every message, such as incarnation ids.
   */
  cachedString(cache: StringCache): string {
    const start = this.span();
    return cache.text(this.text, start, this.pos);
  }

  /**
   * A string field that must be valid UTF-8 (protobuf requires it of `string`): its text, or
   * undefined with `rejected` holding the bytes (up to 16), so that two different byte strings
   * can never decode to one text (the lossy decoding maps every invalid byte to U+FFFD).
   */
  utf8(): string | undefined {
    const start = this.span();
    const end = this.pos;
    if (!this.validUtf8(start, end)) {
      this.rejected = this.buf.subarray(start, Math.min(end, start + 16));
      this.rejectedLength = end - start;
      return undefined;
    }
    return this.text.toString("utf8", start, end);
  }

  /** Whether bytes [start, end) are valid UTF-8 (all-ASCII text, the common case, without a native call). */
  private validUtf8(start: number, end: number): boolean {
    const b = this.buf;
    for (let i = start; i < end; i++) if ((b[i] as number) >= 0x80) return isUtf8(b.subarray(start, end));
    return true;
  }

  /**
   * `utf8()` for strings a stream repeats (incarnation ids): valid text comes from `cache` (equal
   * bytes, equal string), invalid UTF-8 gives undefined as there.
   */
  cachedUtf8(cache: StringCache): string | undefined {
    const start = this.span();
    return this.validUtf8(start, this.pos) ? cache.text(this.text, start, this.pos) : undefined;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case VARINT:
        this.varint();
        return;
      case FIXED64:
        this.advance(8);
        return;
      case LEN:
        this.span();
        return;
      case FIXED32:
        this.advance(4);
        return;
      default:
        throw new WireFormatError(`wire type ${wireType}, which these messages never use`);
    }
  }

  private advance(n: number): void {
    if (n > this.end - this.pos) throw new WireFormatError(TRUNCATED);
    this.pos += n;
  }
}

/**
 * The last few strings decoded through it, by their bytes: a stream names the same incarnation
 * ids in every message, and decoding one (a native call and a fresh string each time) costs
 * more than comparing its bytes with a copy. Equal bytes give an equal string, so a hit is
 * exactly what decoding would give; the same string object also makes the maps keyed by it
 * faster (its hash is kept on the string). Bounded: `size` entries, replaced in turn.
 */
export class StringCache {
  private readonly bytes: Uint8Array[] = [];
  private readonly texts: string[] = [];
  private next = 0;

  constructor(
    private readonly size = 16,
    /** Longer strings are decoded, not cached. */
    private readonly maxLength = 64,
  ) {}

  text(buf: Buffer, start: number, end: number): string {
    const len = end - start;
    if (len > this.maxLength) return buf.toString("utf8", start, end);
    const all = this.bytes;
    for (let i = 0; i < all.length; i++) {
      const held = all[i] as Uint8Array;
      if (held.length !== len) continue;
      let j = 0;
      while (j < len && held[j] === buf[start + j]) j++;
      if (j === len) return this.texts[i] as string;
    }
    const text = buf.toString("utf8", start, end);
    const copy = new Uint8Array(buf.subarray(start, end));
    if (all.length < this.size) {
      all.push(copy);
      this.texts.push(text);
    } else {
      all[this.next] = copy;
      this.texts[this.next] = text;
      this.next = (this.next + 1) % this.size;
    }
    return text;
  }
}
