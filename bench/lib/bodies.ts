// gRPC request bodies for the load drivers, encoded with the generated protobuf-es schema.
//
// A gRPC message on the wire is a 5-byte prefix (flag 0 = uncompressed, then the length as a
// 4-byte big-endian integer) followed by the protobuf bytes. h2load sends one fixed body file;
// the Node driver patches key digits into a template (see keys.ts for why keys are fixed-width).

import { create, toBinary } from "@bufbuild/protobuf";
import { ConsumeRequestSchema } from "../../src/gen/tokenmesh/v1/rate_limiter_pb.ts";
import { KEY_DIGITS, keyName } from "./keys.ts";

export const CONSUME_PATH = "/tokenmesh.v1.RateLimiter/Consume";

export function grpcFrame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** A framed Consume request with one single-bucket decision per key, in order. */
export function consumeBody(policy: string, keys: readonly string[]): Buffer {
  const request = create(ConsumeRequestSchema, {
    decisions: keys.map((key) => ({ buckets: [{ policy, key }] })),
  });
  return grpcFrame(toBinary(ConsumeRequestSchema, request));
}

/**
 * A body with `decisions` single-bucket decisions whose key digits sit at known offsets.
 * `fill(draw)` overwrites every key with `keyName(draw())` and returns a fresh Buffer, cheap
 * enough (a copy and a few digit writes) for the driver's per-request budget.
 */
export interface BodyTemplate {
  readonly decisions: number;
  fill(draw: () => number): Buffer;
}

const MARK = "k".padEnd(KEY_DIGITS + 1, "9");

export function consumeTemplate(policy: string, decisions: number): BodyTemplate {
  const keys = Array.from({ length: decisions }, () => MARK);
  const base = consumeBody(policy, keys);
  const offsets: number[] = [];
  const mark = Buffer.from(MARK, "latin1");
  for (let from = 0; offsets.length < decisions; ) {
    const at = base.indexOf(mark, from);
    if (at < 0) throw new Error("template: key placeholder not found (policy name must not contain it)");
    offsets.push(at + 1); // digits start after the "k"
    from = at + mark.length;
  }
  return {
    decisions,
    fill(draw) {
      const out = Buffer.from(base);
      for (const at of offsets) {
        let n = draw();
        for (let d = KEY_DIGITS - 1; d >= 0; d--) {
          out[at + d] = 48 + (n % 10);
          n = Math.floor(n / 10);
        }
      }
      return out;
    },
  };
}

/** Self-check used once per run: a filled template equals a body encoded from scratch. */
export function templateMatchesEncoder(policy: string): boolean {
  const t = consumeTemplate(policy, 3);
  const draws = [0, 42, 9_999_999];
  let i = 0;
  const filled = t.fill(() => draws[i++] as number);
  return filled.equals(consumeBody(policy, draws.map(keyName)));
}
