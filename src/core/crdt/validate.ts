// Validation of a peer's delta (trap 11): the one way from an UntrustedDelta (what a decoder
// read) to a Delta (what the join takes). A peer is input like any other: this gives the delta
// or an error naming the field and the limit, never throws, and checks everything before the
// replica touches its state. Values are checked as `unknown`, whatever their declared type: an
// in-process caller can hand over anything. Only format and content-only
// bounds live here; a failure closes that stream and nothing of the message is applied.
// Checks that depend on the receiver's clock (future stamps) are the replica's: it holds such
// data, bounded and counted, and applies it once its clock admits it.

import type { FieldError, Result } from "../result.ts";
import { birthOf, type IncId, isIncarnationId } from "./incarnation.ts";
import { type KeyConfig, makeKeyConfig } from "./key-config.ts";
import type {
  CountRow,
  Delta,
  DeltaPrefix,
  DemandRow,
  EntryRow,
  IncarnationRecord,
  KeyDelta,
  KeyEntriesDelta,
  KeyPartDelta,
  UntrustedDelta,
} from "./wire.ts";

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

/** What is wrong with a delta: the field path within it and why (the core's FieldError). */
export type DeltaError = FieldError;

export type Parsed<T> = Result<T, DeltaError>;

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
 * Limits already checked, so that each distinct limit is parsed once and the key parts that
 * name it share one object, which the core's comparisons short-cut. A replica keeps one across
 * deltas (its peers send the same few limits in every delta; ReplicaState.knownLimits): a hit
 * is a limit equal field for field to one made before, so the answer is the same either way.
 * Bounded: the last SIZE distinct limits, replaced in turn; a delta naming thousands of
 * distinct limits pays a linear scan, not unbounded memory.
 */
export class KnownLimits {
  private static readonly SIZE = 16;
  private readonly made: KeyConfig[] = [];
  private next = 0;

  of(w: Obj, field: string): KeyConfig | Bad {
    const made = this.made;
    for (let i = 0; i < made.length; i++) {
      const c = made[i] as KeyConfig;
      if (
        c.version === w.version &&
        c.tEff === w.effectiveUs &&
        c.rate.capacity === w.capacity &&
        c.rate.refillTokens === w.refillTokens &&
        c.rate.refillPeriodUs === w.refillPeriodUs
      )
        return c;
    }
    for (const name of LIMIT_NUMBERS) if (!isInt(w[name], 0, Number.MAX_SAFE_INTEGER)) return intFail(w[name], `${field}.${name}`);
    const config = makeKeyConfig(
      { capacity: w.capacity as number, refillTokens: w.refillTokens as number, refillPeriodUs: w.refillPeriodUs as number },
      w.version as number,
      w.effectiveUs as number,
    );
    if (!config.ok) return fail(field, config.error.message);
    if (made.length < KnownLimits.SIZE) made.push(config.value);
    else {
      made[this.next] = config.value;
      this.next = (this.next + 1) % KnownLimits.SIZE;
    }
    return config.value;
  }
}

const LIMIT_NUMBERS = ["version", "effectiveUs", "capacity", "refillTokens", "refillPeriodUs"] as const;

interface Context {
  readonly incarnations: readonly IncId[];
  readonly births: readonly number[];
  readonly limits: Limits;
  readonly seen: KnownLimits;
}

/** `[incarnation index, count]` rows, each count within the content bound at `at`. */
function countRows(v: unknown, ki: number, name: string, at: number, cx: Context): readonly CountRow[] | Bad {
  if (!Array.isArray(v)) return fail(`keys[${ki}].${name}`, "must be an array");
  const { incarnations, births, limits } = cx;
  if (v.length > limits.maxIncsPerDelta) return fail(`keys[${ki}].${name}`, `has ${v.length} items, limit ${limits.maxIncsPerDelta}`);
  // Rows are few (one per writer): a set only where a scan for repeats would cost.
  const named = v.length > 8 ? new Set<number>() : undefined;
  for (let j = 0; j < v.length; j++) {
    const row: unknown = v[j];
    if (!Array.isArray(row) || row.length !== 2) return fail(`keys[${ki}].${name}[${j}]`, "must be [incarnation, count]");
    const ix: unknown = row[0];
    if (!isInt(ix, 0, incarnations.length - 1)) return intFail(ix, `keys[${ki}].${name}[${j}][0]`, 0, incarnations.length - 1);
    const n: unknown = row[1];
    const bound = countBound(births[ix] as number, at, limits);
    if (!isInt(n, 0, bound)) return intFail(n, `keys[${ki}].${name}[${j}][1]`, 0, bound);
    let repeated = false;
    if (named !== undefined) repeated = named.size === named.add(ix).size;
    else for (let i = 0; i < j; i++) repeated ||= (v[i] as unknown[])[0] === ix;
    if (repeated) return fail(`keys[${ki}].${name}[${j}]`, "names an incarnation twice");
  }
  // Checked above: every row is a pair of integers in range.
  return v as unknown as readonly CountRow[];
}

/** Largest demand figure accepted (milli-tokens per second): far above any real demand, well inside exact integers. */
export const MAX_DEMAND_MILLI = 2 ** 50;

/** Share mode's demand figures of a key part (absent from older peers: then none). */
function demandRows(v: unknown, ki: number, cx: Context): readonly DemandRow[] | undefined | Bad {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) return fail(`keys[${ki}].demand`, "must be an array");
  const { incarnations, births, limits } = cx;
  if (v.length > limits.maxIncsPerDelta) return fail(`keys[${ki}].demand`, `has ${v.length} items, limit ${limits.maxIncsPerDelta}`);
  for (let j = 0; j < v.length; j++) {
    const row: unknown = v[j];
    if (!Array.isArray(row) || row.length !== 3)
      return fail(`keys[${ki}].demand[${j}]`, "must be [incarnation, atUs, milli-tokens per second]");
    const ix: unknown = row[0];
    if (!isInt(ix, 0, incarnations.length - 1)) return intFail(ix, `keys[${ki}].demand[${j}][0]`, 0, incarnations.length - 1);
    const birth = births[ix] as number;
    if (!isInt(row[1], birth, Number.MAX_SAFE_INTEGER)) return intFail(row[1], `keys[${ki}].demand[${j}][1]`, birth);
    if (!isInt(row[2], 0, MAX_DEMAND_MILLI)) return intFail(row[2], `keys[${ki}].demand[${j}][2]`, 0, MAX_DEMAND_MILLI);
    for (let i = 0; i < j; i++) if ((v[i] as unknown[])[0] === ix) return fail(`keys[${ki}].demand[${j}]`, "names an incarnation twice");
  }
  // Checked above: every row is three integers in range.
  return v as unknown as readonly DemandRow[];
}

/** Order of entries in a key part: slot, then incarnation id (the text, as the core sorts). */
function entryOrder(a: EntryRow, b: EntryRow, incarnations: readonly IncId[]): number {
  if (a[1] !== b[1]) return a[1] - b[1];
  const ia = incarnations[a[0]] as IncId;
  const ib = incarnations[b[0]] as IncId;
  return ia < ib ? -1 : ia > ib ? 1 : 0;
}

/** A key part's entries: in range, within the content bound, sorted (a copy if they were not), no repeats. */
function checkEntries(rawEntries: unknown, ki: number, cx: Context): EntryRow[] | Bad {
  const { incarnations, births, limits } = cx;
  if (!Array.isArray(rawEntries) || rawEntries.length > limits.maxEntriesPerKey)
    return arr(rawEntries, `keys[${ki}].entries`, limits.maxEntriesPerKey) as Bad;
  let sorted = true;
  for (let j = 0; j < rawEntries.length; j++) {
    const row: unknown = rawEntries[j];
    if (!Array.isArray(row) || row.length !== 4) return fail(`keys[${ki}].entries[${j}]`, "must be [incarnation, slot, c0, c1]");
    const ix: unknown = row[0];
    if (!isInt(ix, 0, incarnations.length - 1)) return intFail(ix, `keys[${ki}].entries[${j}][0]`, 0, incarnations.length - 1);
    const birth = births[ix] as number;
    const slot: unknown = row[1];
    if (!isInt(slot, birth, Number.MAX_SAFE_INTEGER)) return intFail(slot, `keys[${ki}].entries[${j}][1]`, birth);
    const c1: unknown = row[3];
    const bound = countBound(birth, slot, limits);
    if (!isInt(c1, 1, bound)) return intFail(c1, `keys[${ki}].entries[${j}][3]`, 1, bound);
    const c0: unknown = row[2];
    if (!isInt(c0, 0, c1 - 1)) return intFail(c0, `keys[${ki}].entries[${j}][2]`, 0, c1 - 1);
    if (j > 0 && entryOrder(rawEntries[j - 1] as EntryRow, row as unknown as EntryRow, incarnations) >= 0) sorted = false;
  }
  // Checked above: every row is four integers in range.
  let entries = rawEntries as unknown as EntryRow[];
  // Senders emit entries in (slot, incarnation) order; sort (a copy) only what arrives otherwise.
  if (!sorted) entries = [...entries].sort((a, b) => entryOrder(a, b, incarnations));
  for (let j = 1; j < entries.length; j++) {
    if (entryOrder(entries[j - 1] as EntryRow, entries[j] as EntryRow, incarnations) === 0)
      return fail(`keys[${ki}].entries`, "repeats a (slot, incarnation)");
  }
  return entries;
}

/**
 * A part with header_omitted: the entries alone. One that also carries any of the header is
 * refused rather than half-used: which of the two the sender meant is not for us to guess.
 */
function checkEntriesOnly(o: Obj, ki: number, cx: Context): KeyEntriesDelta | Bad {
  const known: unknown = o.known;
  if (
    o.limit !== undefined ||
    o.prefix !== undefined ||
    (Array.isArray(known) ? known.length > 0 : known !== undefined) ||
    (o.horizonUs ?? 0) !== 0
  )
    return fail(`keys[${ki}].headerOmitted`, "is set, yet the part carries a header (limit, prefix, known or horizonUs)");
  // Share mode's figures go only on whole parts (its tick marks the key's header changed).
  if (Array.isArray(o.demand) && o.demand.length > 0)
    return fail(`keys[${ki}].demand`, "is set in a part without a header (figures ride on whole parts only)");
  const entries = checkEntries(o.entries, ki, cx);
  if (entries instanceof Bad) return entries;
  if (entries.length === 0) return fail(`keys[${ki}].entries`, "is empty in a part without a header (it would carry nothing)");
  if (typeof o.partial !== "boolean") return fail(`keys[${ki}].partial`, "must be a boolean");
  return { key: o.key as string, headerOmitted: true, entries, partial: o.partial };
}

function checkKey(raw: unknown, ki: number, cx: Context): KeyPartDelta | Bad {
  if (!isObj(raw)) return obj(raw, `keys[${ki}]`) as Bad;
  const o = raw;
  const { limits } = cx;
  if (typeof o.key !== "string" || o.key.length === 0 || o.key.length > limits.maxKeyLength)
    return fail(`keys[${ki}].key`, `must be a string of 1..${limits.maxKeyLength} characters`);
  if (o.headerOmitted !== undefined && typeof o.headerOmitted !== "boolean") return fail(`keys[${ki}].headerOmitted`, "must be a boolean");
  if (o.headerOmitted === true) return checkEntriesOnly(o, ki, cx);
  const wl = o.limit;
  if (!isObj(wl)) return obj(wl, `keys[${ki}].limit`) as Bad;
  const limit = cx.seen.of(wl, `keys[${ki}].limit`);
  if (limit instanceof Bad) return limit;
  const p = o.prefix;
  if (!isObj(p)) return obj(p, `keys[${ki}].prefix`) as Bad;
  const wp = p.limit;
  if (!isObj(wp)) return obj(wp, `keys[${ki}].prefix.limit`) as Bad;
  const plimit = cx.seen.of(wp, `keys[${ki}].prefix.limit`);
  if (plimit instanceof Bad) return plimit;
  const tauUs: unknown = p.tauUs;
  if (!isInt(tauUs, 0, Number.MAX_SAFE_INTEGER)) return intFail(tauUs, `keys[${ki}].prefix.tauUs`);
  const level: unknown = p.level;
  if (!isInt(level, -(2 ** 52), plimit.rate.capacityUnits))
    return intFail(level, `keys[${ki}].prefix.level`, -(2 ** 52), plimit.rate.capacityUnits);
  // Named one by one, not in a loop over names: a property read by a variable name is a
  // generic lookup, and this runs for every key part.
  const { foldedSum, digest, lateCharged, forgiven } = p;
  if (!isInt(foldedSum, 0, Number.MAX_SAFE_INTEGER)) return intFail(foldedSum, `keys[${ki}].prefix.foldedSum`);
  if (!isInt(digest, 0, Number.MAX_SAFE_INTEGER)) return intFail(digest, `keys[${ki}].prefix.digest`);
  if (!isInt(lateCharged, 0, Number.MAX_SAFE_INTEGER)) return intFail(lateCharged, `keys[${ki}].prefix.lateCharged`);
  if (!isInt(forgiven, 0, Number.MAX_SAFE_INTEGER)) return intFail(forgiven, `keys[${ki}].prefix.forgiven`);
  const horizonUs: unknown = o.horizonUs;
  if (!isInt(horizonUs, 0, Number.MAX_SAFE_INTEGER)) return intFail(horizonUs, `keys[${ki}].horizonUs`);
  const folded = countRows(p.folded, ki, "prefix.folded", tauUs, cx);
  if (folded instanceof Bad) return folded;
  const known = countRows(o.known, ki, "known", tauUs, cx);
  if (known instanceof Bad) return known;
  const entries = checkEntries(o.entries, ki, cx);
  if (entries instanceof Bad) return entries;
  if (typeof o.partial !== "boolean") return fail(`keys[${ki}].partial`, "must be a boolean");
  const demand = demandRows(o.demand, ki, cx);
  if (demand instanceof Bad) return demand;
  const prefix: DeltaPrefix = {
    tauUs,
    level,
    limit: plimit,
    folded,
    foldedSum,
    digest,
    lateCharged,
    forgiven,
  };
  const part: KeyDelta = { key: o.key, limit, prefix, known, entries, horizonUs, partial: o.partial };
  return demand === undefined || demand.length === 0 ? part : { ...part, demand };
}

/**
 * Checks and bounds a delta from a peer: the Delta the join may take, or what is wrong with it.
 * `known`: limits checked before (a replica passes its own, kept across deltas); the result
 * does not depend on it.
 */
export function validateDelta(raw: UntrustedDelta, limits: Limits = DEFAULT_LIMITS, known: KnownLimits = new KnownLimits()): Parsed<Delta> {
  const r = check(raw, limits, known);
  return r instanceof Bad ? { ok: false, error: r.error } : { ok: true, value: r };
}

/** Lists up to this long are scanned for repeats; longer ones use a Set. */
const SCAN_MAX = 8;

function check(raw: unknown, limits: Limits, known: KnownLimits): Delta | Bad {
  const o = obj(raw, "delta");
  if (o instanceof Bad) return o;
  if (typeof o.node !== "string" || o.node.length === 0 || o.node.length > 256)
    return fail("node", "must be a string of 1..256 characters");
  if (!isIncarnationId(o.incarnation)) return fail("incarnation", "must be a 32-hex-digit incarnation id");
  const fromSeq = int(o.fromSeq, "fromSeq");
  if (fromSeq instanceof Bad) return fromSeq;
  const toSeq = int(o.toSeq, "toSeq", fromSeq);
  if (toSeq instanceof Bad) return toSeq;
  const sentAtUs = int(o.sentAtUs, "sentAtUs");
  if (sentAtUs instanceof Bad) return sentAtUs;
  const horizonUs = int(o.horizonUs, "horizonUs");
  if (horizonUs instanceof Bad) return horizonUs;
  const rawIncs = arr(o.incarnations, "incarnations", limits.maxIncsPerDelta);
  if (rawIncs instanceof Bad) return rawIncs;
  const seen = rawIncs.length > SCAN_MAX ? new Set<unknown>() : undefined;
  for (let j = 0; j < rawIncs.length; j++) {
    const id: unknown = rawIncs[j];
    // The sender's own id, usually among them, was checked just above.
    if (id !== o.incarnation && !isIncarnationId(id)) return fail(`incarnations[${j}]`, "must be a 32-hex-digit incarnation id");
    let repeated = false;
    if (seen !== undefined) repeated = seen.size === seen.add(id).size;
    else for (let i = 0; i < j; i++) repeated ||= rawIncs[i] === id;
    if (repeated) return fail(`incarnations[${j}]`, "repeats an incarnation");
  }
  // Checked above: every item is an incarnation id, none twice.
  const incarnations = rawIncs as IncId[];
  const rawRecords = arr(o.records, "records", limits.maxIncsPerDelta);
  if (rawRecords instanceof Bad) return rawRecords;
  for (let j = 0; j < rawRecords.length; j++) {
    const row: unknown = rawRecords[j];
    if (!Array.isArray(row) || row.length !== 3) return fail(`records[${j}]`, "must be [incarnation, watermarkUs, retiredUs]");
    if (!isInt(row[0], 0, incarnations.length - 1)) return intFail(row[0], `records[${j}][0]`, 0, incarnations.length - 1);
    if (!isInt(row[1], 0, Number.MAX_SAFE_INTEGER)) return intFail(row[1], `records[${j}][1]`);
    if (!isInt(row[2], -1, Number.MAX_SAFE_INTEGER)) return intFail(row[2], `records[${j}][2]`, -1);
  }
  // Checked above: every record is three integers in range.
  const records = rawRecords as unknown as IncarnationRecord[];
  const rawKeys = arr(o.keys, "keys", limits.maxKeysPerDelta);
  if (rawKeys instanceof Bad) return rawKeys;
  const keys: KeyPartDelta[] = [];
  const names = rawKeys.length > SCAN_MAX ? new Set<string>() : undefined;
  const births: number[] = [];
  for (const id of incarnations) births.push(birthOf(id));
  const cx: Context = { incarnations, births, limits, seen: known };
  for (let j = 0; j < rawKeys.length; j++) {
    const k = checkKey(rawKeys[j], j, cx);
    if (k instanceof Bad) return k;
    let repeated = false;
    if (names !== undefined) repeated = names.size === names.add(k.key).size;
    else for (let i = 0; i < j; i++) repeated ||= (keys[i] as KeyPartDelta).key === k.key;
    if (repeated) return fail(`keys[${j}].key`, "repeats a key");
    keys.push(k);
  }
  return { node: o.node, incarnation: o.incarnation, fromSeq, toSeq, sentAtUs, horizonUs, incarnations, records, keys };
}
