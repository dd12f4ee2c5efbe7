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
    readonly end: number,
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

  /** A string field, decoded lossily (invalid bytes become U+FFFD): only where that cannot matter. */
  string(): string {
    const r = this.sub();
    return this.text.toString("utf8", r.pos, r.end);
  }

  /**
   * A string field that must be valid UTF-8 (protobuf requires it of `string`): its text, or
   * undefined with `rejected` holding the bytes (up to 16), so that two different byte strings
   * can never decode to one text (the lossy decoding maps every invalid byte to U+FFFD).
   */
  utf8(): string | undefined {
    const r = this.sub();
    const b = this.buf;
    let ascii = true;
    for (let i = r.pos; i < r.end; i++) {
      if ((b[i] as number) >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (!ascii && !isUtf8(b.subarray(r.pos, r.end))) {
      this.rejected = b.subarray(r.pos, Math.min(r.end, r.pos + 16));
      this.rejectedLength = r.end - r.pos;
      return undefined;
    }
    return this.text.toString("utf8", r.pos, r.end);
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
        this.sub();
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
