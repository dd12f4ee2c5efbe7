// Applying a peer's delta. Order matters for trap 11: check and bound everything first
// (validate.ts: UntrustedDelta -> Delta), then decide what the receiver's clock cannot accept yet (held, bounded and
// counted, never dropped: dropping would make replicas disagree forever about what one accepted
// and relayed), and only then join. A rejected delta changes nothing and closes the stream.

import type { Result } from "../result.ts";
import { restartRegionalStreams } from "./delta-out.ts";
import { noteStream } from "./forwarding.ts";
import { headerBit, markHeaderFrom, stateForEntries } from "./header-omission.ts";
import { isIgnoredKey } from "./ignored-keys.ts";
import type { IncId } from "./incarnation.ts";
import { afterKeyChange, touchKey } from "./key-index.ts";
import { joinKeyInto, normalizeKey } from "./key-join.ts";
import { type Entry, findEntry, type KeyState, NO_COUNTS } from "./key-state.ts";
import { afterJoin, lastReplayed } from "./level-cache.ts";
import { markKeyChanged, writeRetirement } from "./local-change.ts";
import { newSession, onDelta, resetOut } from "./peer-session.ts";
import { joinRecord, raiseHorizon, type WireInc } from "./registry.ts";
import { bump, bumpWatermark, newKeyRecord, type ReplicaState, stampAt } from "./replica-state.ts";
import { markWhatSenderLacks, type PartSender } from "./sender-lacks.ts";
import { joinFigure } from "./share.ts";
import { renewIfRetired } from "./timers.ts";
import { type DeltaError, validateDelta } from "./validate.ts";
import type { Ack, CountRow, Delta, EntryRow, UntrustedDelta } from "./wire.ts";

/** Bound on the keys one ack asks to be resent whole. */
const MAX_MISSING = 256;

export type ApplyResult = Result<Ack, DeltaError>;

/**
 * Joins a key part into the replica, stamping what changed with a new sequence number. A change
 * is attributed to the sending incarnation (and so not echoed back to it) only where the result
 * is exactly what it sent; where the join mixed in local data, the peer lacks part of the result
 * and the change counts as local. Key metadata (prefix, K, config) is always sent on.
 */
export function joinKeyPart(
  s: ReplicaState,
  key: string,
  part: KeyState,
  origin: IncId | undefined,
  sender?: { readonly from: PartSender; readonly whole: boolean; readonly headerBit: number },
): void {
  const behind = part.horizon < s.reg.horizon;
  if (behind) part.horizon = s.reg.horizon;
  const rec = s.keys.get(key);
  if (rec === undefined) {
    normalizeKey(part);
    const seq = bump(s);
    for (const e of part.entries) {
      e.seq = seq;
      e.origin = origin;
    }
    const added = newKeyRecord(key, part, seq);
    // A key first learned from this part is exactly what the peer sent (unless our horizon
    // moved it on): attribute it to the sender, so that it is not sent back to it, nor on to
    // others with relay off. As a local change it went to every peer: with keys collected
    // between uses, every key another replica touched came back to it once more.
    added.origin = behind ? undefined : origin;
    if (sender !== undefined) markHeaderFrom(added, sender.headerBit);
    s.keys.set(key, added);
    touchKey(s, added, seq);
    afterKeyChange(s, added);
    return;
  }
  const last = lastReplayed(rec);
  const ch = joinKeyInto(rec.state, part);
  afterJoin(rec, last, ch.meta, ch.entries);
  if (ch.meta || ch.entries.length > 0) {
    const seq = bump(s);
    for (const e of ch.entries) {
      // What the peer sent for this (slot, inc): part.entries is sorted and the join left it alone.
      const at = findEntry(part.entries, e.slot, e.inc);
      const theirs = at >= 0 ? part.entries[at] : undefined;
      e.seq = seq;
      e.origin = theirs !== undefined && theirs.c0 === e.c0 && theirs.c1 === e.c1 ? origin : undefined;
    }
    if (ch.meta) markKeyChanged(s, rec, seq);
    else touchKey(s, rec, seq);
    afterKeyChange(s, rec);
  }
  if (sender !== undefined) {
    markHeaderFrom(rec, sender.headerBit);
    markWhatSenderLacks(s, rec, part, sender.whole, sender.from);
  }
}

/** Joins a registry record; a watermark rising counts as hearing from that incarnation. */
export function joinRecordPart(s: ReplicaState, rec: WireInc, raw: number, origin: IncId | undefined): void {
  const before = s.reg.incs.get(rec.id);
  const beforeWm = before?.wm;
  const beforeRetired = before?.retired;
  const changed = joinRecord(s.reg, rec);
  if (changed === undefined) return;
  // A known record whose retirement stayed put only had its watermark raised.
  changed.seq = beforeRetired !== undefined && beforeRetired === changed.retired ? bumpWatermark(s) : bump(s);
  // Echo-safe only if the result is exactly what the peer sent (see joinKeyPart).
  changed.origin = changed.wm === rec.wm && changed.retired === rec.retired ? origin : undefined;
  if (beforeWm === undefined || changed.wm > beforeWm) s.lastHeard.set(rec.id, raw);
}

/** A key part of a validated delta as the key state it describes. */
export interface KeyPart {
  readonly key: string;
  readonly state: KeyState;
  readonly partial: boolean;
  /** The part carried its header (false: entries alone, on the receiver's own header). */
  readonly whole?: false;
}

// Rows are read by index, not destructured: this runs for every key part received.

function countMap(rows: readonly CountRow[], incarnations: readonly IncId[]): Map<IncId, number> {
  const m = new Map<IncId, number>();
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as CountRow;
    m.set(incarnations[row[0]] as IncId, row[1]);
  }
  return m;
}

function entryStates(rows: readonly EntryRow[], ids: readonly IncId[]): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as EntryRow;
    out.push({ inc: ids[row[0]] as IncId, slot: row[1], c0: row[2], c1: row[3], seq: 0 });
  }
  return out;
}

/**
 * The key states of a validated delta's parts that carry their header, incarnation indices
 * resolved (nothing left to check). Parts without one are left out: only a receiver that holds
 * the header can read them (`entriesOnlyParts`).
 */
export function keyParts(d: Delta, skip?: (key: string) => boolean): KeyPart[] {
  const ids = d.incarnations;
  const parts: KeyPart[] = [];
  for (const k of d.keys) {
    if (k.headerOmitted === true || skip?.(k.key) === true) continue;
    const p = k.prefix;
    const entries = entryStates(k.entries, ids);
    const prefix = {
      tau: p.tauUs,
      level: p.level,
      config: p.limit,
      // An empty F is the shared empty map (a prefix's F is never written in place; K is).
      F: p.folded.length === 0 ? NO_COUNTS : countMap(p.folded, ids),
      sumF: p.foldedSum,
      digest: p.digest,
      lateCharged: p.lateCharged,
      forgiven: p.forgiven,
    };
    const state: KeyState = { config: k.limit, prefix, K: countMap(k.known, ids), entries, horizon: k.horizonUs };
    parts.push({ key: k.key, state, partial: k.partial });
  }
  return parts;
}

/**
 * The parts of `d` without a header (and not ignored here), each on this replica's header of
 * the key when it holds one from the sender (header-omission.ts); the keys it does not, to be
 * asked for whole.
 */
function entriesOnlyParts(s: ReplicaState, d: Delta, bit: number): { parts: KeyPart[]; unknown: string[] } {
  const parts: KeyPart[] = [];
  const unknown: string[] = [];
  for (const k of d.keys) {
    if (k.headerOmitted !== true || isIgnoredKey(s, k.key)) continue;
    const state = stateForEntries(s.keys.get(k.key), bit, entryStates(k.entries, d.incarnations));
    if (state === undefined) unknown.push(k.key);
    else parts.push({ key: k.key, state, partial: k.partial, whole: false });
  }
  return { parts, unknown };
}

/** The registry records of a validated delta, incarnation indices resolved. */
export function recordParts(d: Delta): WireInc[] {
  const out: WireInc[] = [];
  for (const row of d.records) out.push({ id: d.incarnations[row[0]] as IncId, wm: row[1], retired: row[2] });
  return out;
}

/**
 * Incarnations whose entries or records a delta carries (not those named only in a prefix's F or
 * K rows, which travel with their key whatever the lane): the ones whose class matters (forwarding.ts).
 */
function writersIn(d: Delta): readonly IncId[] {
  // The common delta names one incarnation, its sender's: no set to build.
  if (d.incarnations.length === 1) return d.records.length > 0 || d.keys.some((k) => k.entries.length > 0) ? d.incarnations : [];
  const ix = new Set<number>();
  for (const r of d.records) ix.add(r[0]);
  for (const k of d.keys) for (const e of k.entries) ix.add(e[0]);
  return [...ix].map((i) => d.incarnations[i] as IncId);
}

/** Whether a key state holds anything stamped beyond `limit` (its entries are sorted by slot). */
function beyond(st: KeyState, limit: number): boolean {
  const last = st.entries[st.entries.length - 1];
  return st.prefix.tau > limit || (last !== undefined && last.slot > limit);
}

/** Splits off what is stamped beyond the quarantine limit (snapshot.ts holds loaded data the same way). */
export function quarantine(
  parts: readonly KeyPart[],
  limit: number,
): { now: KeyPart[]; later: { key: string; state: KeyState; at: number }[] } {
  // Nearly always nothing is beyond the limit: then `parts` is `now` as it is.
  if (!parts.some((part) => beyond(part.state, limit))) return { now: parts as KeyPart[], later: [] };
  const now: KeyPart[] = [];
  const later: { key: string; state: KeyState; at: number }[] = [];
  for (const part of parts) {
    const st = part.state;
    if (st.prefix.tau > limit) {
      later.push({ key: part.key, state: st, at: st.prefix.tau });
      continue;
    }
    // Entries are sorted by slot: only the last can tell whether any is beyond the limit.
    const last = st.entries[st.entries.length - 1];
    const future = last !== undefined && last.slot > limit ? st.entries.filter((e) => e.slot > limit) : [];
    if (future.length > 0) {
      const at = Math.max(...future.map((e) => e.slot));
      later.push({ key: part.key, state: { ...st, K: new Map(st.K), entries: future }, at });
      // Still whole for what it says the sender holds: we hold nothing stamped beyond the limit.
      now.push({ ...part, state: { ...st, entries: st.entries.filter((e) => e.slot <= limit) } });
    } else {
      now.push(part);
    }
  }
  return { now, later };
}

/**
 * Share mode's demand figures (soft state beside the lattice, share.ts), for keys not ignored
 * here. A figure that replaces the one held gets a change sequence and touches its key, so it is
 * relayed where its writer's entries go (delta-out.ts). The sequence is a soft change, like a
 * watermark's: a snapshot need not be written for it.
 */
function joinDemandFigures(s: ReplicaState, d: Delta, latest: number): void {
  let seq: number | undefined;
  for (const k of d.keys) {
    if (k.demand === undefined || k.demand.length === 0 || isIgnoredKey(s, k.key)) continue;
    let took = false;
    for (const [ix, at, rateMilli] of k.demand) {
      const held = joinFigure(s, k.key, d.incarnations[ix] as IncId, { at, rateMilli }, latest, d.incarnation);
      if (held === undefined) continue;
      seq ??= bumpWatermark(s);
      held.seq = seq;
      took = true;
    }
    const rec = took ? s.keys.get(k.key) : undefined;
    if (rec !== undefined && seq !== undefined) touchKey(s, rec, seq);
  }
}

export function applyDelta(s: ReplicaState, untrusted: UntrustedDelta, raw_now: number): ApplyResult {
  const checked = validateDelta(untrusted, s.opts.limits, s.knownLimits);
  s.stats.deltasIn += 1;
  if (!checked.ok) {
    s.stats.deltasRejected += 1;
    return checked;
  }
  const d = checked.value;
  let newKeys = 0;
  let ignored = 0;
  let headerless = 0;
  for (const part of d.keys) {
    if (isIgnoredKey(s, part.key)) ignored += 1;
    // A part without its header never makes a key (it is asked for whole instead).
    else if (part.headerOmitted === true) headerless += 1;
    else if (!s.keys.has(part.key)) newKeys += 1;
  }
  if (newKeys > s.opts.maxNewKeysPerDelta) {
    s.stats.deltasRejected += 1;
    return { ok: false, error: { field: "keys", message: `introduces ${newKeys} new keys, limit ${s.opts.maxNewKeysPerDelta}` } };
  }
  const limit = stampAt(s, raw_now) + s.opts.skewBoundUs + s.opts.maxDelayUs;
  // Keys ignored here (a removed policy) are skipped part by part; the rest of the delta joins.
  const wholeParts = ignored === 0 ? keyParts(d) : keyParts(d, (key) => isIgnoredKey(s, key));
  // Bits are only ever given to sessions that exist: without one, no header from it is held.
  const known = s.sessions.get(d.node);
  const bit = known === undefined ? 0 : headerBit(s, known);
  const entriesOnly = headerless === 0 ? undefined : entriesOnlyParts(s, d, bit);
  const parts = entriesOnly === undefined || entriesOnly.parts.length === 0 ? wholeParts : [...wholeParts, ...entriesOnly.parts];
  const { now, later } = quarantine(parts, limit);
  let heldCount = 0;
  for (const h of later) heldCount += h.state.entries.length + 1;
  if (s.stats.heldNow + heldCount > s.opts.maxHeldEntries) {
    s.stats.deltasRejected += 1;
    return {
      ok: false,
      error: { field: "keys", message: `would hold ${s.stats.heldNow + heldCount} early items, limit ${s.opts.maxHeldEntries}` },
    };
  }

  s.stats.keysIgnored += ignored;
  // Peers fold this data only once our watermark passes it, held here or not (heartbeat.ts).
  if (d.keys.length > 0) s.heartbeat.peerData = true;
  let session = s.sessions.get(d.node);
  if (session === undefined) {
    session = newSession(raw_now);
    s.sessions.set(d.node, session);
  }
  // A straggler from a node's previous (retired) incarnation, after its new one spoke: its
  // content joins like any data, but it must not flip the stream back, and its watermarks are
  // not trusted. (A current stream whose incarnation we retired stays a normal stream.)
  const inc = d.incarnation;
  const straggler = session.inInc !== undefined && session.inInc !== inc && (s.reg.incs.get(inc)?.retired ?? -1) >= 0;
  const { trusted, newStream, previous } = straggler
    ? { trusted: false, newStream: false, previous: undefined }
    : onDelta(session, inc, d.fromSeq, d.toSeq);
  // A peer that restarted or renewed holds nothing of ours under its new stream: resend it all.
  if (newStream) resetOut(session, raw_now);
  // Who wrote what, for the regional lanes (forwarding.ts); a class change restarts their streams.
  if (!straggler && noteStream(s.routing, s.self, d.node, inc, writersIn(d))) restartRegionalStreams(s, raw_now);
  if (!trusted) s.stats.deltasUntrusted += 1;
  // A delta from an incarnation's own stream proves it alive even when a gap keeps its
  // watermark from being applied: silence, not loss, is what retires.
  if (!straggler && s.reg.incs.has(inc)) s.lastHeard.set(inc, raw_now);
  // The node behind this stream now writes under a new incarnation: the previous one is dead
  // (a restart) or already retired (a renewal). Retire it now rather than after T_retire of
  // silence, so folds do not stall for T_retire on every restart. Written as replicated state.
  if (previous !== undefined && previous !== inc && previous !== s.self) {
    const old = s.reg.incs.get(previous);
    if (old !== undefined && old.retired < 0) writeRetirement(s, old, stampAt(s, raw_now));
  }

  for (const h of later) {
    s.heldKeys.push({ key: h.key, state: h.state, releaseAt: h.at });
    s.stats.quarantinedEntries += h.state.entries.length;
  }
  s.stats.heldNow += heldCount;
  if (raiseHorizon(s.reg, Math.min(d.horizonUs, limit))) bump(s);
  for (const rec of recordParts(d)) {
    // Without the whole interval, a watermark may cover data we lack: keep the record, not its wm.
    const wm = trusted ? Math.min(rec.wm, limit) : 0;
    // Whatever is capped now is held and joined whole once the clock admits it.
    if ((trusted && rec.wm > limit) || rec.retired > limit) {
      s.heldRecords.push({ rec: trusted ? rec : { ...rec, wm: 0 }, releaseAt: Math.max(trusted ? rec.wm : 0, rec.retired) });
    }
    joinRecordPart(s, { id: rec.id, wm, retired: Math.min(rec.retired, limit) }, raw_now, inc);
  }
  // A key first learned from a partial part lacks the tail the sender left out (it thought we
  // held it: we collected the key since). Ask for it whole, in every ack, until it comes whole.
  const missing: string[] = entriesOnly === undefined ? [] : entriesOnly.unknown.slice(0, MAX_MISSING);
  for (const part of parts) {
    const owed = s.incomplete.get(part.key);
    if (part.partial && (!s.keys.has(part.key) || owed?.has(d.node))) {
      if (owed === undefined) s.incomplete.set(part.key, new Set([d.node]));
      else owed.add(d.node);
      if (missing.length < MAX_MISSING) missing.push(part.key);
    } else if (!part.partial && owed !== undefined) {
      owed.delete(d.node);
      if (owed.size === 0) s.incomplete.delete(part.key);
    }
  }
  // A straggler's parts are older than its node's current state: they say nothing of what it lacks.
  const from: PartSender | undefined = straggler ? undefined : { inc, acked: session.acked };
  const bitNow = headerBit(s, session);
  for (const part of now) {
    const sender = from && { from, whole: !part.partial, headerBit: part.whole === false ? 0 : bitNow };
    joinKeyPart(s, part.key, part.state, inc, sender);
  }
  joinDemandFigures(s, d, limit);
  session.synced = true;
  // Retired by the mesh: continue at once under a fresh id (a retirement is final: docs/design.md,
  // "The registry: watermarks, retirement, horizon").
  if (s.ready) renewIfRetired(s, raw_now);
  return {
    ok: true,
    value: {
      kind: "ack",
      node: s.opts.node,
      inc: s.self,
      peerInc: inc,
      upTo: session.contigIn,
      gap: !trusted,
      t1: d.sentAtUs,
      t2: raw_now,
      missing,
    },
  };
}

/** Applies held data the clock now admits. */
export function releaseHeld(s: ReplicaState, raw: number): void {
  if (s.heldKeys.length === 0 && s.heldRecords.length === 0) return;
  const limit = stampAt(s, raw) + s.opts.skewBoundUs + s.opts.maxDelayUs;
  const keep = [];
  for (const h of s.heldKeys) {
    if (h.releaseAt <= limit) {
      s.stats.heldNow -= h.state.entries.length + 1;
      joinKeyPart(s, h.key, h.state, undefined);
    } else keep.push(h);
  }
  s.heldKeys = keep;
  const keepRecs = [];
  for (const h of s.heldRecords) {
    if (h.releaseAt <= limit) joinRecordPart(s, h.rec, raw, undefined);
    else keepRecs.push(h);
  }
  s.heldRecords = keepRecs;
}
