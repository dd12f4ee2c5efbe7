// Writes protobuf wire format (https://protobuf.dev/programming-guides/encoding/) for the
// messages tokenmesh encodes by hand: varints of safe integers (int64 as two's complement,
// sint64 zigzag), proto3's omission of zero scalars, and length-delimited fields whose length is
// written once their body is (one byte reserved; the body moves if it needs more).

const TWO_32 = 4_294_967_296;

export const VARINT = 0;
export const LEN = 2;

/** A growing byte buffer with the few protobuf writes the Delta needs. */
export class ProtoWriter {
  buf: Uint8Array;
  pos = 0;
  /** A Buffer view of `buf` for UTF-8 writes, made again when `buf` grows. */
  private text: Buffer | undefined;

  /** `expectedBytes`: a guess at the message's size (the buffer doubles when it is short). */
  constructor(expectedBytes = 16_384) {
    this.buf = new Uint8Array(Math.max(64, expectedBytes));
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.text = undefined;
  }

  /** A varint of the 64-bit value (hi, lo), both unsigned 32-bit halves. */
  private varint64(lo: number, hi: number): void {
    this.ensure(10);
    const b = this.buf;
    while (hi !== 0 || lo > 0x7f) {
      b[this.pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    b[this.pos++] = lo;
  }

  /** uint32/uint64/int64 of an integer number (two's complement for a negative int64). */
  int(n: number): void {
    if (n >= 0 && n < 0x80) {
      this.ensure(1);
      this.buf[this.pos++] = n;
      return;
    }
    this.varint64(n >>> 0, Math.floor(n / TWO_32) >>> 0);
  }

  /** sint64 (zigzag) of an integer number. */
  sint(n: number): void {
    if (n >= 0) {
      const z = 2 * n;
      this.varint64(z >>> 0, Math.floor(z / TWO_32) >>> 0);
      return;
    }
    // -2n - 1, formed on the two halves so that it stays exact up to |n| = 2^53.
    const m = -2 * n;
    let lo = m >>> 0;
    let hi = Math.floor(m / TWO_32) >>> 0;
    if (lo === 0) {
      lo = 0xffffffff;
      hi = (hi - 1) >>> 0;
    } else lo -= 1;
    this.varint64(lo, hi);
  }

  tag(field: number, wireType: number): void {
    this.int((field << 3) | wireType);
  }

  /** A scalar field of implicit presence: left out when zero, as protobuf-es does. */
  intField(field: number, n: number): void {
    if (n === 0) return;
    this.tag(field, VARINT);
    this.int(n);
  }

  sintField(field: number, n: number): void {
    if (n === 0) return;
    this.tag(field, VARINT);
    this.sint(n);
  }

  boolField(field: number, v: boolean): void {
    if (!v) return;
    this.tag(field, VARINT);
    this.int(1);
  }

  /** A string, even when empty (callers skip empty singular strings themselves). */
  string(field: number, s: string): void {
    this.tag(field, LEN);
    const max = s.length * 3;
    this.ensure(max + 5);
    // Lengths below 128 take one byte; write the text after a one-byte length, then fix it.
    const start = this.pos;
    this.pos += 1;
    this.text ??= Buffer.from(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    const written = this.text.write(s, this.pos, "utf8");
    this.pos += written;
    this.closeLength(start);
  }

  /** Opens a length-delimited field; `end` closes it. Returns where its length goes. */
  begin(field: number): number {
    this.tag(field, LEN);
    this.ensure(1);
    const start = this.pos;
    this.pos += 1;
    return start;
  }

  end(start: number): void {
    this.closeLength(start);
  }

  /** Writes the length of the bytes after `start + 1`, moving them if it needs more than a byte. */
  private closeLength(start: number): void {
    const len = this.pos - start - 1;
    if (len < 0x80) {
      this.buf[start] = len;
      return;
    }
    let size = 1;
    for (let v = len >>> 7; v !== 0; v >>>= 7) size++;
    this.ensure(size - 1);
    this.buf.copyWithin(start + size, start + 1, this.pos);
    let v = len;
    let p = start;
    while (v > 0x7f) {
      this.buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[p] = v;
    this.pos += size - 1;
  }

  bytes(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}
