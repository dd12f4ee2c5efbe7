// A standalone replica's snapshot: its buckets, each a limit and a level at a time, in
// protobuf wire format (written and read with src/wire/, no schema file: the layout is only
// this file's, and versioned by the snapshot format):
//
//   chunk   1: repeated Bucket
//   Bucket  1: string id (policy NUL key), 2: capacity, 3: refill_tokens, 4: refill_period_us,
//           5: sint64 level (units of the limit), 6: at_us
//
// A bucket's state is one observation (level at a time) from one writer, so a later file's
// bucket replaces an earlier one's when it was observed later: that is the join here.

import { makeRate } from "../core/rate.ts";
import type { BucketStore, Held } from "../limiter/bucket-store.ts";
import { LEN, ProtoReader, VARINT, WireFormatError } from "../wire/proto-reader.ts";
import { ProtoWriter } from "../wire/proto-writer.ts";
import type { LoadedFile } from "./snapshot-directory.ts";
import type { SnapshotExport, SnapshotSource } from "./snapshot-scheduler.ts";

const BUCKETS_PER_CHUNK = 4096;
/** A bucket observed further ahead of this process's clock than this is refused as corrupt. */
const MAX_AHEAD_US = 3_600_000_000;

function encodeChunk(store: BucketStore, ids: readonly string[]): Uint8Array {
  const w = new ProtoWriter(ids.length * 48);
  for (const id of ids) {
    const held = store.peek(id);
    if (held === undefined) continue; // evicted since the listing
    const at = w.begin(1);
    w.string(1, id);
    w.intField(2, held.rate.capacity);
    w.intField(3, held.rate.refillTokens);
    w.intField(4, held.rate.refillPeriodUs);
    w.sintField(5, held.state.level);
    w.intField(6, held.state.atUs);
    w.end(at);
  }
  return w.bytes();
}

/**
 * Every bucket, for a base, without holding the event loop for the whole LRU (copying its ids
 * costs about 0.6 us each): the walk is pulled a chunk at a time, and buckets accessed
 * meanwhile, which the walk may have missed, are added at the end. A bucket the walk stood on
 * that moved makes it start over from the front; past 4 walks' worth, the rest is copied at once.
 */
function* allBuckets(store: BucketStore): Generator<Uint8Array> {
  const stopWatching = store.watchAccesses();
  try {
    const walk = store.walkIds();
    const cap = 4 * store.size + BUCKETS_PER_CHUNK;
    let batch: string[] = [];
    let visits = 0;
    for (let next = walk.next(); next.done !== true; next = walk.next()) {
      batch.push(next.value);
      if (++visits > cap) {
        batch.push(...store.ids());
        break;
      }
      if (batch.length >= BUCKETS_PER_CHUNK) {
        yield encodeChunk(store, batch);
        batch = [];
      }
    }
    if (batch.length > 0) yield encodeChunk(store, batch);
    const accessed = stopWatching();
    for (let i = 0; i < accessed.length; i += BUCKETS_PER_CHUNK) yield encodeChunk(store, accessed.slice(i, i + BUCKETS_PER_CHUNK));
  } finally {
    stopWatching();
  }
}

export function bucketSnapshotSource(store: BucketStore): SnapshotSource {
  store.trackChanges();
  let changes = 0;
  return {
    kind: "standalone",
    // Moves whenever a bucket was debited since the last export.
    position: () => (store.hasChanges ? changes + 1 : changes),
    // Buckets dropped with a removed policy stay in the files written before; increments only
    // add, so a base replaces them (else a restart would bring a drained bucket back).
    needsBase: () => store.hasRemovals,
    begin(from: number): SnapshotExport {
      // A base takes every bucket, an increment those debited since the last export; either
      // way the change set starts over, so what changes while this is written goes next time.
      // A drop while a base is written (its walk spans event-loop turns) asks for the next base.
      if (from === 0) store.takeRemovals();
      const changed = store.takeChanged();
      changes += 1;
      if (from === 0) return { to: changes, writer: "", items: store.size, chunks: allBuckets(store) };
      function* chunks(): Generator<Uint8Array> {
        for (let i = 0; i < changed.length; i += BUCKETS_PER_CHUNK) yield encodeChunk(store, changed.slice(i, i + BUCKETS_PER_CHUNK));
      }
      return { to: changes, writer: "", items: changed.length, chunks: chunks() };
    },
  };
}

type Bucket = { id: string; held: Held };

function readBucket(r: ProtoReader, nowUs: number): Bucket {
  let id = "";
  const n = [0, 0, 0, 0, 0, 0, 0];
  while (!r.done) {
    const [field, wt] = r.tag();
    if (field === 1) {
      if (wt !== LEN) throw new WireFormatError(`Bucket.id: wire type ${wt}`);
      id = r.string();
    } else if (field >= 2 && field <= 6) {
      if (wt !== VARINT) throw new WireFormatError(`Bucket field ${field}: wire type ${wt}`);
      n[field] = field === 5 ? r.sint() : r.uint();
    } else r.skip(wt);
  }
  const [, , capacity, refillTokens, refillPeriodUs, level, atUs] = n as [number, number, number, number, number, number, number];
  if (id === "") throw new WireFormatError("Bucket.id: empty");
  const made = makeRate({ capacity, refillTokens, refillPeriodUs });
  if (!made.ok) throw new WireFormatError(`bucket ${JSON.stringify(id.slice(0, 64))}: ${made.error.field}: ${made.error.message}`);
  if (!Number.isSafeInteger(level) || level < 0 || level > made.value.capacityUnits) {
    throw new WireFormatError(`bucket ${JSON.stringify(id.slice(0, 64))}: level ${level} outside 0..${made.value.capacityUnits}`);
  }
  if (!Number.isSafeInteger(atUs) || atUs > nowUs + MAX_AHEAD_US) {
    throw new WireFormatError(`bucket ${JSON.stringify(id.slice(0, 64))}: observed at ${atUs} us, over an hour after now (${nowUs})`);
  }
  return { id, held: { rate: made.value, state: { level, atUs } } };
}

export interface BucketLoad {
  readonly files: number;
  readonly buckets: number;
  readonly refused?: { readonly file: string; readonly reason: string };
}

/** Reads every file first, then restores the buckets; a file that fails ends the series there. */
export function loadBucketSnapshot(store: BucketStore, files: readonly LoadedFile[], nowUs: number): BucketLoad {
  const latest = new Map<string, Held>();
  let used = 0;
  let refused: BucketLoad["refused"];
  for (const f of files) {
    const found: Bucket[] = [];
    try {
      for (const chunk of f.chunks) {
        const r = new ProtoReader(chunk, 0, chunk.length);
        while (!r.done) {
          const [field, wt] = r.tag();
          if (field === 1 && wt === LEN) found.push(readBucket(r.sub(), nowUs));
          else r.skip(wt);
        }
      }
    } catch (err) {
      refused = { file: f.name, reason: (err as Error).message };
      break;
    }
    for (const b of found) {
      const cur = latest.get(b.id);
      const later = cur === undefined || b.held.state.atUs > cur.state.atUs;
      const sameTimeLower = cur !== undefined && b.held.state.atUs === cur.state.atUs && b.held.state.level < cur.state.level;
      if (later || sameTimeLower) latest.set(b.id, b.held);
    }
    used++;
  }
  // Least recently used first, so the LRU keeps the most recent if the bound is smaller now.
  const ordered = [...latest.entries()].sort((a, b) => a[1].state.atUs - b[1].state.atUs);
  for (const [id, held] of ordered) store.restore(id, held);
  return { files: used, buckets: latest.size, ...(refused === undefined ? {} : { refused }) };
}
