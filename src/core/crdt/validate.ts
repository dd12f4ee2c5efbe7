// Validation of a peer's delta (trap 11). A peer is input like any other: this parses an
// unknown value into a decoded delta or an error naming the field and the limit, never throws,
// and checks everything before the replica touches its state. Only format and content-only
// bounds live here; a failure closes that stream and nothing of the message is applied.
// Checks that depend on the receiver's clock (future stamps) are the replica's: it holds such
// data, bounded and counted, and applies it once its clock admits it.

import { birthOf, type IncId, isIncarnationId } from "./incarnation.ts";
import { fromWireConfig, type KeyConfig, type WireConfig } from "./key-config.ts";
import { type Entry, type KeyState, NO_COUNTS } from "./key-state.ts";
import type { WireInc } from "./registry.ts";

export interface Limits {
  readonly maxKeysPerDelta: number;
  readonly maxEntriesPerKey: number;
  readonly maxIncsPerDelta: number;
  readonly maxKeyLength: number;
  /** Slack on the content bound of counts: an honest writer never passes (C + r*age)(1+eps) + C. */
  readonly countSlack: number;
  /**
   * Longest a slot may stay open: consumption is charged at the slot's start, so a writer's
   * total at a slot can include up to one slot of refill beyond its age.
   */
  readonly maxSlotUs: number;
  /**
   * The largest capacity and rate over every policy the mesh runs. Counts are bounded by
   * content against these (docs/design.md, trap 11: C_max and r_max over every policy). The key's own
   * configs are not enough: after a limit is lowered, a writer's total from the old, faster limit
   * exceeds the new one's bound. Without it, counts are only held to exact integers (2^52).
   */
  readonly policyMax?: { readonly capacity: number; readonly tokensPerSecond: number } | undefined;
}

export const DEFAULT_LIMITS: Limits = {
  maxKeysPerDelta: 10_000,
  maxEntriesPerKey: 4_096,
  maxIncsPerDelta: 1_024,
  maxKeyLength: 512,
  countSlack: 0.05,
  maxSlotUs: 1_000_000,
};

export interface ParsedDelta {
  readonly node: string;
  readonly inc: IncId;
  readonly from: number;
  readonly to: number;
  readonly sentAt: number;
  readonly horizon: number;
  readonly records: readonly WireInc[];
  readonly keys: readonly { key: string; state: KeyState; partial: boolean }[];
}

export interface DeltaError {
  readonly field: string;
  readonly message: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: DeltaError };

type Obj = Record<string, unknown>;
class Bad {
  constructor(readonly error: DeltaError) {}
}

function fail(field: string, message: string): Bad {
  return new Bad({ field, message });
}
function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
function obj(v: unknown, field: string): Obj | Bad {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Obj) : fail(field, "must be an object");
}
function int(v: unknown, field: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | Bad {
  return Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max
    ? (v as number)
    : fail(field, `must be an integer in ${min}..${max}, got ${String(v)}`);
}
function arr(v: unknown, field: string, max: number): unknown[] | Bad {
  if (!Array.isArray(v)) return fail(field, "must be an array");
  return v.length <= max ? v : fail(field, `has ${v.length} items, limit ${max}`);
}

/** Largest running total an honest writer born at `birth` can reach by `slot`. */
function countBound(birth: number, slot: number, limits: Limits): number {
  const max = limits.policyMax;
  if (max === undefined) return 2 ** 52;
  const age = Math.max(0, slot - birth) + limits.maxSlotUs;
  const bound = (max.capacity + (max.tokensPerSecond * age) / 1e6) * (1 + limits.countSlack) + max.capacity;
  return Math.min(2 ** 52, Math.ceil(bound));
}

// The parsers below run once per key part of every delta, so on success they build no
// strings: a field's path (`keys[3].prefix.tau`) is only written into an error.

function isInt(v: unknown, min: number, max: number): v is number {
  return Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
}

/** The error `int` reports for `v` at `field`. */
function intFail(v: unknown, field: string, min = 0, max = Number.MAX_SAFE_INTEGER): Bad {
  return fail(field, `must be an integer in ${min}..${max}, got ${String(v)}`);
}

/**
 * Parsed limits, shared by every key part that names the same one: parsing is paid once per
 * distinct limit, and equal limits are one object, which the core's comparisons short-cut.
 */
const recentConfigs: KeyConfig[] = [];
const RECENT_CONFIGS = 16;

function configFromWire(w: Obj, ki: number, name: string): KeyConfig | Bad {
  for (const c of recentConfigs) {
    if (
      c.version === w.version &&
      c.tEff === w.tEff &&
      c.rate.capacity === w.capacity &&
      c.rate.refillTokens === w.refillTokens &&
      c.rate.refillPeriodUs === w.refillPeriodUs
    )
      return c;
  }
  const made = fromWireConfig(w as unknown as WireConfig);
  if (!made.ok) return fail(`keys[${ki}].${name}`, made.message);
  if (recentConfigs.length >= RECENT_CONFIGS) recentConfigs.pop();
  recentConfigs.unshift(made.config);
  return made.config;
}

/** `[inc, count]` rows, each count within the content bound at `at`. */
function countMap(
  v: unknown,
  ki: number,
  name: string,
  at: number,
  incs: readonly IncId[],
  births: readonly number[],
  limits: Limits,
): Map<IncId, number> | Bad {
  if (!Array.isArray(v)) return fail(`keys[${ki}].${name}`, "must be an array");
  if (v.length > limits.maxIncsPerDelta) return fail(`keys[${ki}].${name}`, `has ${v.length} items, limit ${limits.maxIncsPerDelta}`);
  const m = new Map<IncId, number>();
  for (let j = 0; j < v.length; j++) {
    const row: unknown = v[j];
    if (!Array.isArray(row) || row.length !== 2) return fail(`keys[${ki}].${name}[${j}]`, "must be [inc, count]");
    const ix: unknown = row[0];
    if (!isInt(ix, 0, incs.length - 1)) return intFail(ix, `keys[${ki}].${name}[${j}][0]`, 0, incs.length - 1);
    const id = incs[ix] as IncId;
    const n: unknown = row[1];
    const bound = countBound(births[ix] as number, at, limits);
    if (!isInt(n, 0, bound)) return intFail(n, `keys[${ki}].${name}[${j}][1]`, 0, bound);
    if (m.has(id)) return fail(`keys[${ki}].${name}[${j}]`, "names an incarnation twice");
    m.set(id, n);
  }
  return m;
}

const PREFIX_NUMBERS = ["sumF", "digest", "lateCharged", "forgiven"] as const;

function parseKey(
  raw: unknown,
  ki: number,
  incs: readonly IncId[],
  births: readonly number[],
  limits: Limits,
): { key: string; state: KeyState; partial: boolean } | Bad {
  if (!isObj(raw)) return obj(raw, `keys[${ki}]`) as Bad;
  const o = raw;
  if (typeof o.key !== "string" || o.key.length === 0 || o.key.length > limits.maxKeyLength)
    return fail(`keys[${ki}].key`, `must be a string of 1..${limits.maxKeyLength} characters`);
  const rawPrefix = typeof o.prefix === "object" && o.prefix !== null ? (o.prefix as Obj) : {};
  const wc = o.config;
  if (!isObj(wc)) return obj(wc, `keys[${ki}].config`) as Bad;
  const config = configFromWire(wc, ki, "config");
  if (config instanceof Bad) return config;
  const wp = rawPrefix.config;
  if (!isObj(wp)) return obj(wp, `keys[${ki}].prefix.config`) as Bad;
  const pconfig = configFromWire(wp, ki, "prefix.config");
  if (pconfig instanceof Bad) return pconfig;
  const p = o.prefix;
  if (!isObj(p)) return obj(p, `keys[${ki}].prefix`) as Bad;
  const tau: unknown = p.tau;
  if (!isInt(tau, 0, Number.MAX_SAFE_INTEGER)) return intFail(tau, `keys[${ki}].prefix.tau`);
  const level: unknown = p.level;
  if (!isInt(level, -(2 ** 52), pconfig.rate.capacityUnits))
    return intFail(level, `keys[${ki}].prefix.level`, -(2 ** 52), pconfig.rate.capacityUnits);
  for (const name of PREFIX_NUMBERS) {
    const n: unknown = p[name];
    if (!isInt(n, 0, Number.MAX_SAFE_INTEGER)) return intFail(n, `keys[${ki}].prefix.${name}`);
  }
  const horizon: unknown = o.horizon;
  if (!isInt(horizon, 0, Number.MAX_SAFE_INTEGER)) return intFail(horizon, `keys[${ki}].horizon`);
  // An empty F is the shared empty map (a prefix's F is never written in place; K is).
  const F = Array.isArray(p.F) && p.F.length === 0 ? NO_COUNTS : countMap(p.F, ki, "prefix.F", tau, incs, births, limits);
  if (F instanceof Bad) return F;
  const K = countMap(o.K, ki, "K", tau, incs, births, limits);
  if (K instanceof Bad) return K;
  const rawEntries: unknown = o.entries;
  if (!Array.isArray(rawEntries) || rawEntries.length > limits.maxEntriesPerKey)
    return arr(rawEntries, `keys[${ki}].entries`, limits.maxEntriesPerKey) as Bad;
  const entries: Entry[] = [];
  let sorted = true;
  for (let j = 0; j < rawEntries.length; j++) {
    const row: unknown = rawEntries[j];
    if (!Array.isArray(row) || row.length !== 4) return fail(`keys[${ki}].entries[${j}]`, "must be [inc, slot, c0, c1]");
    const ix: unknown = row[0];
    if (!isInt(ix, 0, incs.length - 1)) return intFail(ix, `keys[${ki}].entries[${j}][0]`, 0, incs.length - 1);
    const inc = incs[ix] as IncId;
    const birth = births[ix] as number;
    const slot: unknown = row[1];
    if (!isInt(slot, birth, Number.MAX_SAFE_INTEGER)) return intFail(slot, `keys[${ki}].entries[${j}][1]`, birth);
    const c1: unknown = row[3];
    const bound = countBound(birth, slot, limits);
    if (!isInt(c1, 1, bound)) return intFail(c1, `keys[${ki}].entries[${j}][3]`, 1, bound);
    const c0: unknown = row[2];
    if (!isInt(c0, 0, c1 - 1)) return intFail(c0, `keys[${ki}].entries[${j}][2]`, 0, c1 - 1);
    const e: Entry = { inc, slot, c0, c1, seq: 0 };
    const prev = entries[entries.length - 1];
    if (prev !== undefined && (prev.slot > slot || (prev.slot === slot && prev.inc >= inc))) sorted = false;
    entries.push(e);
  }
  // Senders emit entries in (slot, inc) order; sort only what arrives otherwise.
  if (!sorted) entries.sort((a, b) => a.slot - b.slot || (a.inc < b.inc ? -1 : a.inc > b.inc ? 1 : 0));
  for (let j = 1; j < entries.length; j++) {
    const a = entries[j - 1] as Entry;
    const b = entries[j] as Entry;
    if (a.slot === b.slot && a.inc === b.inc) return fail(`keys[${ki}].entries`, "repeats a (slot, incarnation)");
  }
  const prefix = {
    tau,
    level,
    config: pconfig,
    F,
    sumF: p.sumF as number,
    digest: p.digest as number,
    lateCharged: p.lateCharged as number,
    forgiven: p.forgiven as number,
  };
  if (typeof o.partial !== "boolean") return fail(`keys[${ki}].partial`, "must be a boolean");
  return { key: o.key, state: { config, prefix, K, entries, horizon }, partial: o.partial };
}

/** Parses and bounds a delta from a peer. */
export function parseDelta(raw: unknown, limits: Limits = DEFAULT_LIMITS): Parsed<ParsedDelta> {
  const r = parseInner(raw, limits);
  return r instanceof Bad ? { ok: false, error: r.error } : { ok: true, value: r };
}

function parseInner(raw: unknown, limits: Limits): ParsedDelta | Bad {
  const o = obj(raw, "delta");
  if (o instanceof Bad) return o;
  if (o.kind !== "delta") return fail("kind", 'must be "delta"');
  if (typeof o.node !== "string" || o.node.length === 0 || o.node.length > 256)
    return fail("node", "must be a string of 1..256 characters");
  if (!isIncarnationId(o.inc)) return fail("inc", "must be a 32-hex-digit incarnation id");
  const from = int(o.from, "from");
  if (from instanceof Bad) return from;
  const to = int(o.to, "to", from);
  if (to instanceof Bad) return to;
  const sentAt = int(o.sentAt, "sentAt");
  if (sentAt instanceof Bad) return sentAt;
  const horizon = int(o.horizon, "horizon");
  if (horizon instanceof Bad) return horizon;
  const rawIncs = arr(o.incs, "incs", limits.maxIncsPerDelta);
  if (rawIncs instanceof Bad) return rawIncs;
  const incs: IncId[] = [];
  const seen = new Set<string>();
  for (const [j, id] of rawIncs.entries()) {
    if (!isIncarnationId(id)) return fail(`incs[${j}]`, "must be a 32-hex-digit incarnation id");
    if (seen.has(id)) return fail(`incs[${j}]`, "repeats an incarnation");
    seen.add(id);
    incs.push(id);
  }
  const rawRecords = arr(o.records, "records", limits.maxIncsPerDelta);
  if (rawRecords instanceof Bad) return rawRecords;
  const records: WireInc[] = [];
  for (const [j, row] of rawRecords.entries()) {
    if (!Array.isArray(row) || row.length !== 3) return fail(`records[${j}]`, "must be [inc, wm, retired]");
    const ix = int(row[0], `records[${j}][0]`, 0, incs.length - 1);
    if (ix instanceof Bad) return ix;
    const wm = int(row[1], `records[${j}][1]`);
    if (wm instanceof Bad) return wm;
    const retired = int(row[2], `records[${j}][2]`, -1);
    if (retired instanceof Bad) return retired;
    records.push({ id: incs[ix] as IncId, wm, retired });
  }
  const rawKeys = arr(o.keys, "keys", limits.maxKeysPerDelta);
  if (rawKeys instanceof Bad) return rawKeys;
  const keys: { key: string; state: KeyState; partial: boolean }[] = [];
  const names = new Set<string>();
  const births = incs.map(birthOf);
  for (let j = 0; j < rawKeys.length; j++) {
    const k = parseKey(rawKeys[j], j, incs, births, limits);
    if (k instanceof Bad) return k;
    if (names.has(k.key)) return fail(`keys[${j}].key`, "repeats a key");
    names.add(k.key);
    keys.push(k);
  }
  return { node: o.node, inc: o.inc, from, to, sentAt, horizon, records, keys };
}
