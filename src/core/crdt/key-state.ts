// The replicated state of one key: a product of join-semilattices (docs/design.md, "The level
// as a function of state").
//
//   config   last-writer-wins by (version, content), with an effective time
//   prefix   the folded past (tau, level at tau, F[i] = count of i folded in), ordered totally
//   K        per incarnation, cumulative count known below tau (stored only where it exceeds F)
//   entries  per incarnation and slot, (c0, c1]: the writer's running total before and after
//   horizon  incarnations born before it are forgotten everywhere
//
// Every count is a running total per writer, never an increment (trap 5), and consumption is
// summed over writers, never maxed (trap 1). The level is a pure function of this state and a
// time (see replay.ts), so equal states answer equally.

import type { IncId } from "./incarnation.ts";
import { compareConfig, configText, type KeyConfig } from "./key-config.ts";

/** Consumption of one incarnation in one slot: its running total went from c0 to c1 (tokens). */
export interface Entry {
  readonly inc: IncId;
  /** Stamp (microseconds) the consumption is charged at. */
  readonly slot: number;
  c0: number;
  c1: number;
  /** Local change sequence, for delta extraction; not part of the lattice. */
  seq: number;
  /** Incarnation whose delta last changed it (undefined: changed here); not part of the lattice. */
  origin?: IncId | undefined;
}

export interface Prefix {
  /** Everything before tau is folded into `level`. */
  readonly tau: number;
  /** Level at tau in units of `config.rate`; may be negative (in-flight debt is never floored). */
  readonly level: number;
  /** The limit in force at tau. */
  readonly config: KeyConfig;
  /** Per incarnation, the running total folded in. */
  readonly F: ReadonlyMap<IncId, number>;
  /** Sum of F when folded, and a digest of the fold: tie-breaks that forgetting does not move. */
  readonly sumF: number;
  readonly digest: number;
  /** Late charge applied and forgiven by the cap over this prefix's history (tokens). */
  readonly lateCharged: number;
  readonly forgiven: number;
}

/** `p` with another F (a plain copy: every field, the digest included, read once). */
export function prefixWithF(p: Prefix, F: ReadonlyMap<IncId, number>): Prefix {
  return {
    tau: p.tau,
    level: p.level,
    config: p.config,
    F,
    sumF: p.sumF,
    digest: p.digest,
    lateCharged: p.lateCharged,
    forgiven: p.forgiven,
  };
}

/**
 * A prefix written by a fold. Its digest is a tie-break, read only when two prefixes tie on
 * tau, level and sumF, when it is sent, or when the state is printed; a replica folds every
 * key with a tail on every flush, and most folded keys are collected before any of that, so
 * the digest is computed on first read (same value as computing it at the fold).
 */
export class FoldedPrefix implements Prefix {
  private cachedDigest = -1;

  constructor(
    readonly tau: number,
    readonly level: number,
    readonly config: KeyConfig,
    readonly F: ReadonlyMap<IncId, number>,
    readonly sumF: number,
    readonly lateCharged: number,
    readonly forgiven: number,
  ) {}

  get digest(): number {
    if (this.cachedDigest < 0) this.cachedDigest = prefixDigest(this, 0);
    return this.cachedDigest;
  }
}

export interface KeyState {
  config: KeyConfig;
  prefix: Prefix;
  /** Known running total below tau, only where it exceeds F (the effective K is max(K, F)). */
  K: Map<IncId, number>;
  /** Sorted by (slot, inc); unique per (inc, slot). */
  entries: Entry[];
  horizon: number;
}

/** F of a prefix nothing was folded into. Prefixes never change their F in place, so it is shared. */
export const NO_COUNTS: ReadonlyMap<IncId, number> = new Map();

/** The prefix of a new key per limit: prefixes are never changed in place, so it is shared. */
const freshPrefixes = new WeakMap<KeyConfig, Prefix>(); // module state: a memo keyed by an immutable limit

function freshPrefix(config: KeyConfig): Prefix {
  let p = freshPrefixes.get(config);
  if (p === undefined) {
    p = { tau: 0, level: config.rate.capacityUnits, config, F: NO_COUNTS, sumF: 0, digest: 0, lateCharged: 0, forgiven: 0 };
    freshPrefixes.set(config, p);
  }
  return p;
}

/** A key nobody has touched: full, nothing folded. */
export function newKeyState(config: KeyConfig, horizon = 0): KeyState {
  return {
    config,
    prefix: freshPrefix(config),
    K: new Map(),
    entries: [],
    horizon,
  };
}

export function cloneKeyState(k: KeyState): KeyState {
  return {
    config: k.config,
    prefix: prefixWithF(k.prefix, new Map(k.prefix.F)),
    K: new Map(k.K),
    entries: k.entries.map((e) => ({ ...e })),
    horizon: k.horizon,
  };
}

export function compareEntryPos(a: { slot: number; inc: IncId }, b: { slot: number; inc: IncId }): number {
  if (a.slot !== b.slot) return a.slot - b.slot;
  return a.inc < b.inc ? -1 : a.inc > b.inc ? 1 : 0;
}

/** Index of the entry at (slot, inc), or the bitwise complement of where it would go. */
export function findEntry(entries: readonly Entry[], slot: number, inc: IncId): number {
  let lo = 0;
  let hi = entries.length - 1;
  if (hi < 0) return ~0; // (no entries[-1]: an out-of-bounds read is a slow path in V8)
  // Appending after the last entry is the common case (own consumption at the newest stamp).
  const last = entries[hi] as Entry;
  if (last.slot < slot || (last.slot === slot && last.inc < inc)) return ~entries.length;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const e = entries[mid] as Entry;
    const c = e.slot !== slot ? e.slot - slot : e.inc < inc ? -1 : e.inc > inc ? 1 : 0;
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return ~lo;
}

function sortedPairs(m: ReadonlyMap<IncId, number>): string {
  return [...m.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([i, n]) => `${i}:${n}`)
    .join(",");
}

function sameCounts(a: ReadonlyMap<IncId, number>, b: ReadonlyMap<IncId, number>): boolean {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  for (const [id, n] of a) if (b.get(id) !== n) return false;
  return true;
}

export function prefixText(p: Prefix): string {
  return `${p.tau}|${p.level}|${configText(p.config)}|${sortedPairs(p.F)}|${p.sumF}|${p.digest}|${p.lateCharged}|${p.forgiven}`;
}

/** Canonical text of a key state: byte-equal iff the states are equal. */
export function keyText(k: KeyState): string {
  const entries = k.entries.map((e) => `${e.inc}@${e.slot}:${e.c0}-${e.c1}`).join(",");
  return `cfg=${configText(k.config)};pre=${prefixText(k.prefix)};K=${sortedPairs(k.K)};E=${entries};H=${k.horizon}`;
}

/**
 * FNV-1a (64-bit) over a string, folded to 48 bits so it stays an exact integer. Every fold
 * computes one, so it runs on four 16-bit limbs instead of BigInt (same value: the digest is
 * replicated state and a tie-break, so it must not change; test/crdt/digest.test.ts checks it
 * against the BigInt definition, `digestOfReference`).
 */
export function digestOf(text: string): number {
  // offset basis 0xcbf29ce484222325, prime 0x100000001b3 = 2^40 + 0x1b3
  let h0 = 0x2325;
  let h1 = 0x8422;
  let h2 = 0x9ce4;
  let h3 = 0xcbf2;
  for (let i = 0; i < text.length; i++) {
    h0 ^= text.charCodeAt(i);
    const t0 = h0 * 0x1b3;
    const t1 = h1 * 0x1b3 + (t0 >>> 16);
    const t2 = h2 * 0x1b3 + h0 * 0x100 + (t1 >>> 16);
    const t3 = h3 * 0x1b3 + h1 * 0x100 + (t2 >>> 16);
    h0 = t0 & 0xffff;
    h1 = t1 & 0xffff;
    h2 = t2 & 0xffff;
    h3 = t3 & 0xffff;
  }
  return h3 * 0x1_0000_0000 + h2 * 0x1_0000 + h1;
}

/** configText per limit (limits are immutable and shared by many keys). */
const configTexts = new WeakMap<KeyConfig, string>(); // module state: a memo keyed by an immutable limit

/**
 * `digestOf(prefixText(p))` with `digest` in place of `p.digest` (a fold hashes its prefix with
 * digest 0): the same text, with the limit's part cached and F's usual single row unsorted.
 */
export function prefixDigest(p: Prefix, digest: number = p.digest): number {
  let cfg = configTexts.get(p.config);
  if (cfg === undefined) {
    cfg = configText(p.config);
    configTexts.set(p.config, cfg);
  }
  let F = "";
  if (p.F.size === 1) for (const [id, n] of p.F) F = `${id}:${n}`;
  else if (p.F.size > 1) F = sortedPairs(p.F);
  return digestOf(`${p.tau}|${p.level}|${cfg}|${F}|${p.sumF}|${digest}|${p.lateCharged}|${p.forgiven}`);
}

/** The definition of `digestOf`, kept for tests. */
export function digestOfReference(text: string): number {
  let h = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  const mask = (1n << 64n) - 1n;
  for (let i = 0; i < text.length; i++) {
    h ^= BigInt(text.charCodeAt(i));
    h = (h * prime) & mask;
  }
  return Number(h >> 16n);
}

/** Level in tokens compared exactly across limits with different units (BigInt cross product). */
function compareLevels(a: Prefix, b: Prefix): number {
  const pa = a.config.rate.unitsPerToken;
  const pb = b.config.rate.unitsPerToken;
  if (pa === pb) return a.level - b.level;
  const x = BigInt(a.level) * BigInt(pb);
  const y = BigInt(b.level) * BigInt(pa);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Total order on prefixes; positive when `a` wins. Larger tau, then lower level (the one that
 * has seen more consumption), then larger sumF, then digest, then canonical text: a total
 * order makes "pick the winner" a semilattice join.
 */
export function comparePrefix(a: Prefix, b: Prefix): number {
  if (a.tau !== b.tau) return a.tau - b.tau;
  const lv = compareLevels(a, b);
  if (lv !== 0) return -lv;
  if (a.sumF !== b.sumF) return a.sumF - b.sumF;
  if (a.digest !== b.digest) return a.digest - b.digest;
  const c = compareConfig(a.config, b.config);
  if (c !== 0) return c;
  // Equal configs: the texts can differ only in level (units), F, lateCharged and forgiven.
  // Equal there (the usual case: a peer sending back the prefix we hold) means equal texts.
  if (a === b || (a.level === b.level && a.lateCharged === b.lateCharged && a.forgiven === b.forgiven && sameCounts(a.F, b.F))) return 0;
  const ta = prefixText(a);
  const tb = prefixText(b);
  return ta < tb ? -1 : ta > tb ? 1 : 0;
}
