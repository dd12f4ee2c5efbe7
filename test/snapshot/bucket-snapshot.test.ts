// A standalone replica's snapshot: a base written a chunk at a time while calls move, add and
// evict buckets, plus the increment after it, loads back to exactly the buckets the store
// holds; a bucket that does not validate refuses its file.

import { describe, expect, it } from "vitest";
import { makeRate, type Rate } from "../../src/core/rate.ts";
import { BucketStore } from "../../src/limiter/bucket-store.ts";
import { bucketSnapshotSource, loadBucketSnapshot } from "../../src/snapshot/bucket-snapshot.ts";
import type { LoadedFile } from "../../src/snapshot/snapshot-directory.ts";
import { ProtoWriter } from "../../src/wire/proto-writer.ts";
import { Prng } from "../sim/prng.ts";

const made = makeRate({ capacity: 50, refillTokens: 1, refillPeriodUs: 1_000_000 });
if (!made.ok) throw new Error(made.error.message);
const rate: Rate = made.value;
const NOW = 1_800_000_000_000_000;

const file = (name: string, chunks: Uint8Array[]): LoadedFile => ({
  name,
  chunks,
  bytes: 0,
  header: {
    kind: "standalone",
    role: "base",
    generation: "g",
    sequence: 0,
    node: "n",
    cluster: "",
    writer: "",
    writtenAtUs: NOW,
    items: 0,
  },
});

function contents(store: BucketStore): Map<string, string> {
  return new Map(store.ids().map((id) => [id, JSON.stringify(store.peek(id)?.state)]));
}

describe("standalone snapshots", () => {
  it("a base walked while calls go on, plus its increment, is the store", () => {
    const store = new BucketStore(5_000);
    const rnd = new Prng(7);
    let now = NOW;
    const touch = (id: string, debit: boolean): void => {
      const a = store.access(id, rate, 1, now);
      if (debit) a.debit(rate.unitsPerToken);
    };
    for (let i = 0; i < 5_000; i++) touch(`b${i}`, true);
    const source = bucketSnapshotSource(store);
    const base = source.begin(0, now);
    const chunks: Uint8Array[] = [];
    for (const chunk of base.chunks) {
      chunks.push(chunk);
      // Between two chunks: reads and debits anywhere, new buckets (evicting the oldest).
      for (let k = 0; k < 300; k++) {
        now += 10;
        const roll = rnd.next();
        if (roll < 0.4) touch(`b${Math.floor(rnd.next() * 5_000)}`, false);
        else if (roll < 0.8) touch(`b${Math.floor(rnd.next() * 5_000)}`, true);
        else touch(`new${Math.floor(rnd.next() * 2_000)}`, true);
      }
    }
    const increment = source.begin(base.to, now);
    const loaded = new BucketStore(20_000); // room for stale buckets the store evicted meanwhile
    const r = loadBucketSnapshot(loaded, [file("base.tms", chunks), file("increment-000001.tms", [...increment.chunks])], now);
    expect(r.refused).toBeUndefined();
    // The files may also hold buckets the store evicted since (older ones, stale is conservative).
    const want = contents(store);
    const got = contents(loaded);
    for (const [id, state] of want) expect(got.get(id), id).toBe(state);
  });

  it.each([
    ["a level above the capacity", { level: 51_000_000 }, /level 51000000 outside 0\.\.50000000$/],
    ["a limit the core refuses", { capacity: 0 }, /: capacity: /],
    ["an observation an hour ahead", { atUs: NOW + 3_700_000_000 }, /over an hour after now/],
  ])("refuses %s, naming the bucket", (_what, spoil, reason) => {
    const b = { capacity: 50, refillTokens: 1, refillPeriodUs: 1_000_000, level: 10_000_000, atUs: NOW, ...spoil };
    const w = new ProtoWriter();
    const at = w.begin(1);
    w.string(1, "login\u0000eve");
    w.intField(2, b.capacity);
    w.intField(3, b.refillTokens);
    w.intField(4, b.refillPeriodUs);
    w.sintField(5, b.level);
    w.intField(6, b.atUs);
    w.end(at);
    const store = new BucketStore(10);
    const r = loadBucketSnapshot(store, [file("base.tms", [w.bytes()])], NOW);
    expect(r.refused?.reason).toMatch(/^bucket "login\\u0000eve": /);
    expect(r.refused?.reason).toMatch(reason);
    expect(store.size).toBe(0);
  });
});
