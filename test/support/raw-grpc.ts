// A gRPC call made by hand over node:http2, for input no generated client can produce: bytes
// that are not valid UTF-8 in a string field, a varint too large for its field, a grpc-timeout
// of one microsecond with no client-side timer. Also the few protobuf bytes those requests need.

import { connect } from "node:http2";
import { createConnection } from "node:net";

export interface RawStatus {
  readonly code: number;
  readonly message: string;
  /** The response message (without the 5-byte gRPC frame), if any. */
  readonly body: Buffer;
}

/**
 * One unary call; `headers` are added to the request's (e.g. `grpc-timeout`). With `cancelAfterMs`
 * the call is cancelled (RST_STREAM CANCEL) if unanswered by then, as a client's own deadline
 * does; it then resolves with code 4 (DEADLINE_EXCEEDED) and message "cancelled by the client".
 */
export function rawUnary(
  address: string,
  path: string,
  message: Uint8Array,
  headers: Record<string, string> = {},
  cancelAfterMs?: number,
): Promise<RawStatus> {
  return new Promise((resolve, reject) => {
    const session = connect(`http://${address}`);
    session.on("error", reject);
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...headers,
    });
    const chunks: Buffer[] = [];
    let status: { code: number; message: string } | undefined;
    const take = (h: Record<string, unknown>): void => {
      if (h["grpc-status"] !== undefined) {
        status = { code: Number(h["grpc-status"]), message: decodeURIComponent(String(h["grpc-message"] ?? "")) };
      }
    };
    stream.on("response", take);
    stream.on("trailers", take);
    stream.on("data", (d: Buffer) => chunks.push(d));
    stream.on("error", reject);
    const timer =
      cancelAfterMs === undefined
        ? undefined
        : setTimeout(() => {
            status ??= { code: 4, message: "cancelled by the client" };
            stream.close(0x8 /* CANCEL */);
          }, cancelAfterMs);
    stream.on("close", () => {
      clearTimeout(timer);
      session.close();
      const all = Buffer.concat(chunks);
      if (status === undefined) reject(new Error(`no grpc-status (rst code ${stream.rstCode})`));
      else resolve({ ...status, body: all.subarray(5) });
    });
    const frame = Buffer.alloc(5 + message.length);
    frame.writeUInt32BE(message.length, 1);
    frame.set(message, 5);
    stream.end(frame);
  });
}

export interface RawBucket {
  readonly policy?: Uint8Array | string;
  readonly key?: Uint8Array | string;
  /** A varint written whole, whatever its size. */
  readonly cost?: bigint;
  readonly limit?: { readonly capacity: bigint; readonly refillTokens: bigint; readonly refillPeriodMs: bigint };
}

/** Protobuf wire bytes, built by hand (https://protobuf.dev/programming-guides/encoding/). */
function varint(v: bigint): number[] {
  const out: number[] = [];
  let n = v;
  do {
    const low = Number(n & 0x7fn);
    n >>= 7n;
    out.push(n > 0n ? low | 0x80 : low);
  } while (n > 0n);
  return out;
}

const tag = (field: number, wire: number): number[] => varint(BigInt((field << 3) | wire));
const varintField = (field: number, v: bigint): number[] => [...tag(field, 0), ...varint(v)];

function lenField(field: number, body: ArrayLike<number>): number[] {
  return [...tag(field, 2), ...varint(BigInt(body.length)), ...Array.from(body)];
}

const text = (v: Uint8Array | string): Uint8Array => (typeof v === "string" ? Buffer.from(v, "utf8") : v);

/** A ConsumeRequest/QueryRequest of one decision over `buckets`, written field by field. */
export function rawRequest(buckets: readonly RawBucket[]): Uint8Array {
  const decision: number[] = [];
  for (const b of buckets) {
    const bucket: number[] = [];
    if (b.policy !== undefined) bucket.push(...lenField(1, text(b.policy)));
    if (b.key !== undefined) bucket.push(...lenField(2, text(b.key)));
    if (b.cost !== undefined) bucket.push(...varintField(3, b.cost));
    if (b.limit !== undefined) {
      const l = b.limit;
      bucket.push(...lenField(4, [...varintField(1, l.capacity), ...varintField(2, l.refillTokens), ...varintField(3, l.refillPeriodMs)]));
    }
    decision.push(...lenField(1, bucket));
  }
  return Uint8Array.from(lenField(1, decision));
}

/**
 * Opens `count` streams on one connection with raw HTTP/2 frames, ignoring the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS as a hostile client would (node:http2 queues them instead),
 * each a request's HEADERS without END_STREAM, so they all stay open. Resolves with the error
 * codes of the RST_STREAM frames the server sent within `waitMs` (RFC 9113 section 6.4).
 */
export function openRawStreams(port: number, path: string, count: number, waitMs = 500): Promise<number[]> {
  const literal = (name: string, value: string): number[] => {
    const n = Buffer.from(name);
    const v = Buffer.from(value);
    return [0x00, n.length, ...n, v.length, ...v]; // literal header field, new name, no indexing
  };
  // HPACK (RFC 7541): :method POST (static 3), :scheme http (static 6), then literals.
  const block = [
    0x83,
    0x86,
    ...literal(":path", path),
    ...literal(":authority", "x"),
    ...literal("content-type", "application/grpc"),
    ...literal("te", "trailers"),
  ];
  const frame = (type: number, flags: number, stream: number, payload: number[]): Buffer => {
    const b = Buffer.alloc(9 + payload.length);
    b.writeUIntBE(payload.length, 0, 3);
    b[3] = type;
    b[4] = flags;
    b.writeUInt32BE(stream, 5);
    Buffer.from(payload).copy(b, 9);
    return b;
  };
  return new Promise((resolve, reject) => {
    const socket = createConnection(port, "127.0.0.1");
    const codes: number[] = [];
    let buf = Buffer.alloc(0);
    socket.on("error", reject);
    socket.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const type = buf[3] as number;
        if (type === 0x4 && ((buf[4] as number) & 1) === 0) socket.write(frame(0x4, 0x1, 0, [])); // ACK their SETTINGS
        if (type === 0x3) codes.push(buf.readUInt32BE(9));
        buf = buf.subarray(9 + len);
      }
    });
    socket.once("connect", () => {
      const parts = [Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1"), frame(0x4, 0, 0, [])];
      for (let i = 0; i < count; i++) parts.push(frame(0x1, 0x4, 2 * i + 1, block)); // HEADERS, END_HEADERS
      socket.write(Buffer.concat(parts));
      setTimeout(() => {
        socket.destroy();
        resolve(codes);
      }, waitMs);
    });
  });
}
