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
    // Short ASCII text (incarnation ids, most keys) is copied char by char: making the Buffer
    // view that UTF-8 writes need costs more than the copy for a message of a few such strings.
    if (s.length < 0x80 && this.ascii(s)) return;
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

  /** Writes `s` (under 128 chars) with its one-byte length if it is all ASCII; else writes nothing. */
  private ascii(s: string): boolean {
    this.ensure(s.length + 1);
    const b = this.buf;
    const start = this.pos + 1;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) return false;
      b[start + i] = c;
    }
    b[this.pos] = s.length;
    this.pos = start + s.length;
    return true;
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

  /**
   * Empties the writer for the next message and keeps its buffer, so an encoder called per
   * message allocates nothing but its result. A buffer grown past `keepBytes` by a rare large
   * message is let go rather than held for good.
   */
  reset(keepBytes = 1 << 20): this {
    this.pos = 0;
    if (this.buf.length > keepBytes) {
      this.buf = new Uint8Array(16_384);
      this.text = undefined;
    }
    return this;
  }

  /**
   * A copy of the bytes written, in memory from Node's Buffer pool: a Uint8Array of more than 64 bytes
   * gets its own backing store, which cost more than encoding a small message (an ack, a
   * one-decision answer) on the machines measured here.
   */
  bytes(): Uint8Array {
    const out = Buffer.allocUnsafe(this.pos);
    out.set(this.buf.subarray(0, this.pos));
    // A plain Uint8Array over the same memory: callers get the type they always got.
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }
}
