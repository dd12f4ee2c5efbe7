// Reads protobuf wire format (https://protobuf.dev/programming-guides/encoding/) for the one
// message family the client decodes: varints as JavaScript numbers (exact up to 2^53, which
// every figure the service sends stays under), length-delimited sub-messages, and unknown fields
// skipped as the protobuf spec requires. Bytes that are not a message throw a WireFormatError.

export const VARINT = 0;
export const FIXED64 = 1;
export const LEN = 2;
export const FIXED32 = 5;

/** Bytes that are not a protobuf message. */
export class WireFormatError extends Error {
  override readonly name = "WireFormatError";
}

const TRUNCATED = "premature end of input";

export const fieldOf = (tag: number): number => Math.floor(tag / 8);
export const wireOf = (tag: number): number => tag % 8;

export class ProtoReader {
  constructor(
    readonly buf: Uint8Array,
    public pos: number,
    readonly end: number,
  ) {}

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** An unsigned varint of up to 64 bits, as a number. */
  uint(): number {
    const b = this.buf;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireFormatError(TRUNCATED);
      const byte = b[this.pos++] as number;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
    throw new WireFormatError("varint longer than 10 bytes");
  }

  /**
   * The next tag: field number * 8 + wire type (read them with `fieldOf` and `wireOf`; a number,
   * not a pair, so a hot decode loop allocates nothing per field).
   */
  tag(): number {
    const t = this.uint();
    if (t < 8) throw new WireFormatError("field number 0");
    return t;
  }

  /** A length-delimited field's body: a sub-reader over it. */
  sub(): ProtoReader {
    const len = this.uint();
    if (len > this.end - this.pos) throw new WireFormatError(TRUNCATED);
    const r = new ProtoReader(this.buf, this.pos, this.pos + len);
    this.pos += len;
    return r;
  }

  skip(wireType: number): void {
    if (wireType === VARINT) this.uint();
    else if (wireType === LEN) this.sub();
    else if (wireType === FIXED64 || wireType === FIXED32) {
      const n = wireType === FIXED64 ? 8 : 4;
      if (n > this.end - this.pos) throw new WireFormatError(TRUNCATED);
      this.pos += n;
    } else throw new WireFormatError(`wire type ${wireType}, which these messages never use`);
  }
}
