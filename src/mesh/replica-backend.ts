// The replicated core behind the Limiter: decisions read and debit the CRDT replica, and keys
// are bounded by an LRU at this edge. Evicting a key drops only this replica's copy of it
// (entries are self-describing, and the replica's running totals are never reset), so a full
// key is free to evict; a key that is not full forgets its debt here, which is counted.

import { LRUCache } from "lru-cache";
import type { Policy, StrictPolicy } from "../config/load.ts";
import type { RateSwitch } from "../core/bucket.ts";
import { type KeyConfig, makeKeyConfig, type Replica } from "../core/crdt/index.ts";
import type { BucketAccess } from "../core/decision.ts";
import type { Rate } from "../core/rate.ts";
import type { EvictionCounts } from "../limiter/bucket-store.ts";
import { type BucketBackend, bucketId, type ReplicaShareInfo } from "../limiter/limiter.ts";
import { replicaShares } from "./replica-shares.ts";
import type { StrictEscrow } from "./strict-escrow.ts";

export class ReplicaBackend implements BucketBackend {
  readonly evictions: EvictionCounts = { safe: 0, unsafe: 0 };
  /** Recency of keys this replica holds; the replica's own map follows it. */
  readonly #recency: LRUCache<string, true>;
  /**
   * Each limit becomes a replicated config once. A policy's limit carries the file's `version`
   * and `effectiveAt` (registered by `usePolicies`); any other limit (inline, Envoy domain rules)
   * is version 0, effective from the start.
   */
  #configs = new WeakMap<Rate, KeyConfig>();
  #lastNowUs = 0;
  /**
   * Policies this process served and a reload removed (and no later reload added back). Only
   * these are ignored: a policy this file never had may be one a peer's newer file just added,
   * whose keys must join here before this replica's own reload.
   */
  readonly #removed = new Set<string>();

  constructor(
    readonly replica: Replica,
    maxKeys: number,
    private readonly nodeOf: (incarnation: string) => string | undefined = () => undefined,
    /** Called on every access: the mesh's flush loop may be asleep and must tick again. */
    private readonly onAccess: () => void = () => {},
    /** Strict mode's holders (a strict bucket admits only within its leased share). */
    private readonly escrow?: StrictEscrow,
  ) {
    this.#recency = new LRUCache<string, true>({
      max: maxKeys,
      dispose: (_v, id, reason) => {
        if (reason === "evict") this.#drop(id);
      },
    });
  }

  get size(): number {
    return this.replica.keyCount;
  }

  /**
   * Registers the policies in force (at start and on every reload): their requests then carry
   * `(version, tEff)` into the replicated config, where the higher version wins (docs/crdt.md).
   */
  usePolicies(policies: Iterable<Policy>): void {
    const configs = new WeakMap<Rate, KeyConfig>();
    const list = [...policies];
    const otherMode: string[] = [];
    for (const p of list) {
      configs.set(p.rate, this.#make(p.rate, p.version ?? 0, p.effectiveAtUs ?? 0));
      if ((p.contention ?? "share") !== this.replica.defaultContention) otherMode.push(bucketId(p.name, ""));
    }
    this.#configs = configs;
    this.escrow?.usePolicies(list);
    // Policies whose contention mode is not the replica's default, by the prefix of their bucket
    // ids (inline limits included: they are the policy's buckets).
    this.replica.setOtherContentionPrefixes(otherMode);
  }

  /**
   * At a reload: `removed` are the policies the new file dropped, `inForce` every bucket policy
   * it serves (policy names and Envoy rules' bucket policies, which share the id space). Drops
   * this replica's keys of removed policies (their inline-limit keys too: they are the policy's
   * buckets) and has the replica skip peers' parts for them from now on; a policy back in force
   * is joined again. Returns how many keys were dropped.
   */
  forgetRemovedPolicies(removed: Iterable<string>, inForce: ReadonlySet<string>): number {
    for (const name of removed) this.#removed.add(name);
    for (const name of this.#removed) if (inForce.has(name)) this.#removed.delete(name);
    const dropped = this.replica.ignoreKeyPrefixes([...this.#removed].map((name) => bucketId(name, "")));
    // Deleted, not evicted: the LRU's dispose drops from the replica only on eviction.
    for (const id of dropped) this.#recency.delete(id);
    return dropped.length;
  }

  #make(rate: Rate, version: number, tEff: number): KeyConfig {
    const made = makeKeyConfig(
      { capacity: rate.capacity, refillTokens: rate.refillTokens, refillPeriodUs: rate.refillPeriodUs },
      version,
      tEff,
    );
    if (!made.ok) throw new Error(`limit rejected by the replicated core: ${made.error.message}`);
    return made.value;
  }

  #config(rate: Rate): KeyConfig {
    let c = this.#configs.get(rate);
    if (c === undefined) {
      const made = makeKeyConfig({ capacity: rate.capacity, refillTokens: rate.refillTokens, refillPeriodUs: rate.refillPeriodUs });
      if (!made.ok) throw new Error(`limit rejected by the replicated core: ${made.error.message}`);
      c = made.value;
      this.#configs.set(rate, c);
    }
    return c;
  }

  access(id: string, rate: Rate, cost: number, nowUs: number, _change?: RateSwitch, strict?: StrictPolicy): BucketAccess {
    this.#lastNowUs = nowUs;
    this.#recency.set(id, true);
    this.onAccess();
    const crdt = this.replica.access(id, this.#config(rate), cost, nowUs);
    if (strict === undefined || this.escrow === undefined) return crdt;
    return this.escrow.access(id, rate, cost, strict, crdt, nowUs);
  }

  shares(id: string, nowUs: number): ReplicaShareInfo[] {
    return replicaShares(this.replica, id, nowUs, this.nodeOf);
  }

  /** Keys peers sent are held too: count them in the recency bound. */
  touch(id: string): void {
    this.#recency.set(id, true);
  }

  #drop(id: string): void {
    const verdict = this.replica.dropKey(id, this.#lastNowUs);
    if (verdict === "full") this.evictions.safe++;
    else if (verdict === "unsafe") this.evictions.unsafe++;
  }
}
