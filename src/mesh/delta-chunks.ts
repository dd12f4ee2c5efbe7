// Splits a delta that is too large for one message into several, without weakening what the
// receiver may trust. Every chunk but the last carries only key data, under the empty interval
// (from, from], so it claims nothing about completeness; the last chunk carries the registry
// records (watermarks, retirements) and the real interval (from, to]. The Merge stream is
// ordered, so by the time the receiver trusts the watermarks it has every chunk before them
// (the acknowledged delta-interval rule, Almeida et al., JPDC 2018, Algorithm 2). Key data is
// a join of monotone state, so a chunk applied alone is harmless.

import type { Delta } from "../core/crdt/index.ts";

export interface ChunkLimits {
  readonly maxBytes: number;
  readonly maxKeys: number;
}

/**
 * The limits a mesh link splits its deltas by, from `mesh.maxMessageBytes`: half the message cap
 * leaves headroom. A chunk is also the receiver's unit of work: it applies one per event-loop
 * turn (inbound-stream.ts), so its keys bound how long a peer's backlog can hold client calls
 * back. At 5,000 keys (the earlier bound) a saturated replica sharing its core spent up to 600 ms
 * in one apply and shed its callers (issue 14); 1,000 keys is a few milliseconds of CPU. The
 * simulator uses the same function, so what it carries is what a replica would send.
 */
export function meshChunkLimits(maxMessageBytes: number): ChunkLimits {
  return { maxBytes: maxMessageBytes / 2, maxKeys: 1_000 };
}

/** Encoded messages for `delta`, in the order they must be sent. */
export function encodeInChunks(delta: Delta, limits: ChunkLimits, encode: (d: Delta) => Uint8Array): Uint8Array[] {
  if (delta.keys.length <= limits.maxKeys) {
    const whole = encode(delta);
    if (whole.length <= limits.maxBytes) return [whole];
  }
  if (delta.keys.length <= 1) return [encode(delta)]; // one key that does not fit: let the caller refuse it
  const half = Math.ceil(delta.keys.length / 2);
  const head: Delta = { ...delta, toSeq: delta.fromSeq, records: [], keys: delta.keys.slice(0, half) };
  const tail: Delta = { ...delta, keys: delta.keys.slice(half) };
  return [...encodeInChunks(head, limits, encode), ...encodeInChunks(tail, limits, encode)];
}
