// Validation of a peer's delta (trap 11). A peer is input like any other: this parses an
// unknown value into a decoded delta or an error naming the field and the limit, never throws,
// and checks everything before the replica touches its state. Only format and content-only
// bounds live here; a failure closes that stream and nothing of the message is applied.
// Checks that depend on the receiver's clock (future stamps) are the replica's: it holds such
// data, bounded and counted, and applies it once its clock admits it.

import { birthOf, type IncId, isIncarnationId } from "./incarnation.ts";
import { fromWireConfig, type KeyConfig, type WireConfig } from "./key-config.ts";
import type { Entry, KeyState } from "./key-state.ts";
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
   * content against these (design notes: "max C + max r * age over configs"). The key's own
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

function parseKey(
  raw: unknown,
  f: string,
  incs: readonly IncId[],
  limits: Limits,
): { key: string; state: KeyState; partial: boolean } | Bad {
  const o = obj(raw, f);
  if (o instanceof Bad) return o;
  if (typeof o.key !== "string" || o.key.length === 0 || o.key.length > limits.maxKeyLength)
    return fail(`${f}.key`, `must be a string of 1..${limits.maxKeyLength} characters`);
  const cfgs: KeyConfig[] = [];
  const rawPrefix = typeof o.prefix === "object" && o.prefix !== null ? (o.prefix as Obj) : {};
  for (const [name, w] of [
    ["config", o.config],
    ["prefix.config", rawPrefix.config],
  ] as const) {
    const wo = obj(w, `${f}.${name}`);
    if (wo instanceof Bad) return wo;
    const made = fromWireConfig(wo as unknown as WireConfig);
    if (!made.ok) return fail(`${f}.${name}`, made.message);
    cfgs.push(made.config);
  }
  const [config, pconfig] = cfgs as [KeyConfig, KeyConfig];
  const p = obj(o.prefix, `${f}.prefix`);
  if (p instanceof Bad) return p;
  const tau = int(p.tau, `${f}.prefix.tau`);
  if (tau instanceof Bad) return tau;
  const level = int(p.level, `${f}.prefix.level`, -(2 ** 52), pconfig.rate.capacityUnits);
  if (level instanceof Bad) return level;
  const nums: number[] = [];
  for (const name of ["sumF", "digest", "lateCharged", "forgiven"] as const) {
    const n = int(p[name], `${f}.prefix.${name}`);
    if (n instanceof Bad) return n;
    nums.push(n);
  }
  const horizon = int(o.horizon, `${f}.horizon`);
  if (horizon instanceof Bad) return horizon;
  const countMap = (v: unknown, field: string, at: number): Map<IncId, number> | Bad => {
    const a = arr(v, field, limits.maxIncsPerDelta);
    if (a instanceof Bad) return a;
    const m = new Map<IncId, number>();
    for (const [j, row] of a.entries()) {
      if (!Array.isArray(row) || row.length !== 2) return fail(`${field}[${j}]`, "must be [inc, count]");
      const ix = int(row[0], `${field}[${j}][0]`, 0, incs.length - 1);
      if (ix instanceof Bad) return ix;
      const id = incs[ix] as IncId;
      const n = int(row[1], `${field}[${j}][1]`, 0, countBound(birthOf(id), at, limits));
      if (n instanceof Bad) return n;
      if (m.has(id)) return fail(`${field}[${j}]`, "names an incarnation twice");
      m.set(id, n);
    }
    return m;
  };
  const F = countMap(p.F, `${f}.prefix.F`, tau);
  if (F instanceof Bad) return F;
  const K = countMap(o.K, `${f}.K`, tau);
  if (K instanceof Bad) return K;
  const rawEntries = arr(o.entries, `${f}.entries`, limits.maxEntriesPerKey);
  if (rawEntries instanceof Bad) return rawEntries;
  const entries: Entry[] = [];
  for (const [j, row] of rawEntries.entries()) {
    const ef = `${f}.entries[${j}]`;
    if (!Array.isArray(row) || row.length !== 4) return fail(ef, "must be [inc, slot, c0, c1]");
    const ix = int(row[0], `${ef}[0]`, 0, incs.length - 1);
    if (ix instanceof Bad) return ix;
    const inc = incs[ix] as IncId;
    const slot = int(row[1], `${ef}[1]`, birthOf(inc));
    if (slot instanceof Bad) return slot;
    const c1 = int(row[3], `${ef}[3]`, 1, countBound(birthOf(inc), slot, limits));
    if (c1 instanceof Bad) return c1;
    const c0 = int(row[2], `${ef}[2]`, 0, c1 - 1);
    if (c0 instanceof Bad) return c0;
    entries.push({ inc, slot, c0, c1, seq: 0 });
  }
  entries.sort((a, b) => a.slot - b.slot || (a.inc < b.inc ? -1 : a.inc > b.inc ? 1 : 0));
  for (let j = 1; j < entries.length; j++) {
    const a = entries[j - 1] as Entry;
    const b = entries[j] as Entry;
    if (a.slot === b.slot && a.inc === b.inc) return fail(`${f}.entries`, "repeats a (slot, incarnation)");
  }
  const [sumF, digest, lateCharged, forgiven] = nums as [number, number, number, number];
  const prefix = { tau, level, config: pconfig, F, sumF, digest, lateCharged, forgiven };
  if (typeof o.partial !== "boolean") return fail(`${f}.partial`, "must be a boolean");
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
  for (const [j, rk] of rawKeys.entries()) {
    const k = parseKey(rk, `keys[${j}]`, incs, limits);
    if (k instanceof Bad) return k;
    if (names.has(k.key)) return fail(`keys[${j}].key`, "repeats a key");
    names.add(k.key);
    keys.push(k);
  }
  return { node: o.node, inc: o.inc, from, to, sentAt, horizon, records, keys };
}
