// The buckets one replica holds, bounded by an LRU. A bucket that is full when evicted is
// indistinguishable from a new one, so evicting it loses nothing; evicting a bucket that is not
// full forgives its debt, which is counted so operators can size `maxKeys` to avoid it.

import { LRUCache } from "lru-cache";
import { type BucketState, bucketLevelAt, levelAcrossSwitch, type RateSwitch } from "../core/bucket.ts";
import type { BucketAccess } from "../core/decision.ts";
import { convertLevel, type Rate, sameRate } from "../core/rate.ts";

/** One bucket as held: its limit and its level at a time. */
export interface Held {
  rate: Rate;
  state: BucketState;
}

export interface EvictionCounts {
  /** Evicted while full: free. */
  safe: number;
  /** Evicted while not full: its consumption is forgotten. */
  unsafe: number;
}

/**
 * One bucket as a decision sees it. A class rather than closures: this runs once per bucket per
 * decision, and per-call closures showed up in profiles (allocation, and tsx's name helpers).
 */
class HeldBucketAccess implements BucketAccess {
  readonly #level: number;
  readonly #at: number;

  constructor(
    private readonly buckets: LRUCache<string, Held>,
    private readonly changed: Set<string> | undefined,
    private readonly id: string,
    private readonly held: Held | undefined,
    readonly rate: Rate,
    readonly cost: number,
    nowUs: number,
    change: RateSwitch | undefined,
  ) {
    if (held === undefined) this.#level = rate.capacityUnits;
    else if (sameRate(held.rate, rate)) this.#level = bucketLevelAt(rate, held.state, nowUs);
    else if (change !== undefined && sameRate(held.rate, change.from) && held.state.atUs < change.atUs)
      this.#level = levelAcrossSwitch(rate, change, held.state, nowUs);
    // A limit older than the last switch (the bucket slept through two reloads): switched now.
    else this.#level = convertLevel(held.rate, rate, bucketLevelAt(held.rate, held.state, nowUs));
    this.#at = held === undefined ? nowUs : Math.max(nowUs, held.state.atUs);
  }

  level(): number {
    return this.#level;
  }

  debit(units: number): void {
    const state = { level: this.#level - units, atUs: this.#at };
    this.changed?.add(this.id);
    if (this.held === undefined) {
      this.buckets.set(this.id, { rate: this.rate, state });
    } else {
      // Already the most recent entry (the lookup refreshed it): update in place, no LRU work.
      this.held.rate = this.rate;
      this.held.state = state;
    }
  }
}

export class BucketStore {
  readonly #buckets: LRUCache<string, Held>;
  readonly evictions: EvictionCounts = { safe: 0, unsafe: 0 };
  /** Latest time seen, used to judge evicted buckets (eviction happens inside `set`). */
  #lastNowUs = 0;
  /** Buckets debited since the last `takeChanged` (only while snapshots track changes). */
  #changed: Set<string> | undefined;
  /** Buckets accessed while a snapshot walks the LRU (see `watchAccesses`). */
  #watched: Set<string> | undefined;
  /** Buckets were dropped since the last `takeRemovals` (an increment cannot express a removal). */
  #removed = false;

  constructor(maxKeys: number) {
    this.#buckets = new LRUCache<string, Held>({
      max: maxKeys,
      dispose: (held, _id, reason) => {
        if (reason !== "evict") return;
        if (bucketLevelAt(held.rate, held.state, this.#lastNowUs) >= held.rate.capacityUnits) this.evictions.safe++;
        else this.evictions.unsafe++;
      },
    });
  }

  get size(): number {
    return this.#buckets.size;
  }

  /**
   * Access to one bucket at `nowUs` under `rate`. A bucket first seen is full. A bucket whose
   * limit changed keeps its level, re-expressed in the new units and clamped to the new capacity:
   * at `change.atUs` when it was held under `change.from` (the policy's switch time), else now.
   * Nothing is stored until `debit`, so reads (Query, denied decisions) never fill the LRU.
   */
  access(id: string, rate: Rate, cost: number, nowUs: number, change?: RateSwitch): BucketAccess {
    if (nowUs > this.#lastNowUs) this.#lastNowUs = nowUs;
    this.#watched?.add(id);
    return new HeldBucketAccess(this.#buckets, this.#changed, id, this.#buckets.get(id), rate, cost, nowUs, change);
  }

  /** Starts recording which buckets change, for incremental snapshots (src/snapshot/). */
  trackChanges(): void {
    this.#changed ??= new Set();
  }

  /** Ids of the buckets debited since the last call (empty when nothing changed). */
  takeChanged(): string[] {
    const ids = this.#changed === undefined ? [] : [...this.#changed];
    this.#changed?.clear();
    return ids;
  }

  /** Whether any bucket was debited since the last `takeChanged`. */
  get hasChanges(): boolean {
    return (this.#changed?.size ?? 0) > 0;
  }

  /** Ids of every bucket held, most recently used first (a copy: about 0.6 us per bucket). */
  ids(): string[] {
    return [...this.#buckets.keys()];
  }

  /**
   * The same ids pulled lazily. A pull after an access can miss that bucket (it moved to the
   * front, behind the walk) or see buckets twice (when the one the walk stands on moved): a
   * caller that spreads a walk over time also watches accesses (`watchAccesses`).
   */
  walkIds(): Iterator<string> {
    return this.#buckets.keys();
  }

  /** Records the id of every access until the returned function is called, which returns them. */
  watchAccesses(): () => string[] {
    const seen = new Set<string>();
    this.#watched = seen;
    return () => {
      if (this.#watched === seen) this.#watched = undefined;
      return [...seen];
    };
  }

  /** A bucket as held, without refreshing its recency. */
  peek(id: string): Readonly<Held> | undefined {
    return this.#buckets.peek(id);
  }

  /** Puts back a bucket read from a snapshot (at start, before anything is admitted). */
  restore(id: string, held: Held): void {
    this.#buckets.set(id, held);
  }

  /**
   * Drops every bucket of these policies (removed by a reload): a policy added again later with
   * the same name starts full, as a new policy does. Returns how many were dropped.
   */
  dropPolicies(names: ReadonlySet<string>): number {
    if (names.size === 0) return 0;
    let dropped = 0;
    for (const id of [...this.#buckets.keys()]) {
      if (names.has(id.slice(0, id.indexOf("\u0000")))) dropped += this.#buckets.delete(id) ? 1 : 0;
    }
    // A dropped id left in the changed or watched set writes nothing (snapshots read buckets
    // with `peek`), but the files already written still hold it: only a new base forgets it.
    if (dropped > 0) this.#removed = true;
    return dropped;
  }

  /** Whether buckets were dropped since the last call, which then starts over (snapshots take a base). */
  takeRemovals(): boolean {
    const removed = this.#removed;
    this.#removed = false;
    return removed;
  }

  /** Whether buckets were dropped since the last `takeRemovals`. */
  get hasRemovals(): boolean {
    return this.#removed;
  }

  /** Drops every bucket (tests and shutdown). */
  clear(): void {
    this.#buckets.clear();
  }
}
