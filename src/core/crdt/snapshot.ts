// A replica's replicated state as deltas, for snapshots on local disk, and the way a restarted
// process takes such deltas back in.
//
// Export: the delta-interval (from, to] of the change sequence, as whole key states (a key
// changed after `from` goes out with everything it holds), cut into chunks a peer would accept
// (`validateDelta`'s limits). `from = 0` is the whole state; a later `from` is an increment, and the
// join of a base with its increments is the state at the last one, whatever the order: each is a
// lattice element below the replica's state. Every chunk series starts with the registry as it
// was when the export began, so a watermark in it never claims an entry that is missing from the
// series: any entry stamped before it had been joined by then, and its key changed no earlier.
// Keys dropped since (collected full, or evicted) are left stale in an earlier export; a stale
// state is below the true one, so joining it never raises a level.
//
// Import: a snapshot is joined like a peer's delta (checked by `validateDelta` first, stamps
// beyond the quarantine limit held), but nothing of it is attributed to a peer: a restarted
// process sends what it loaded to every peer, which is what a whole-cluster restart needs. The
// process is a new incarnation (trap 4: never write under an id peers may hold more of). The
// incarnation that wrote the snapshot is dead, so it is retired at once (as a peer's restart is,
// docs/crdt-history.md item 8); its entries stay data, folded once the floor passes them, so what it
// consumed stays consumed.

import { joinKeyPart, joinRecordPart, keyParts, quarantine, recordParts } from "./delta-in.ts";
import type { IncId } from "./incarnation.ts";
import { changedSince } from "./key-index.ts";
import { writeRetirement } from "./local-change.ts";
import { raiseHorizon } from "./registry.ts";
import { type Replica, replicaStateOf } from "./replica.ts";
import { bump, type KeyRecord, stampAt } from "./replica-state.ts";
import { type Delta, type IncarnationRecord, IncTable, type KeyDelta, keyDelta } from "./wire.ts";

export interface ExportOptions {
  /** Export what changed after this sequence number (0: everything held). */
  readonly from: number;
  /** Chunk bounds: at most this many keys, and about this many incarnations, per delta. */
  readonly maxKeys: number;
  readonly maxIncs: number;
}

export interface StateExport {
  /** The sequence number the export covers up to: the `from` of the next increment. */
  readonly to: number;
  /** The incarnation writing it (retired when a later process loads it). */
  readonly writer: IncId;
  /** Keys the export will look at (an upper bound on what the chunks carry). */
  readonly keys: number;
  /** The deltas, built lazily: the edge may yield to its event loop between two of them. */
  chunks(): Generator<Delta>;
}

const all = (): boolean => true;

/** Starts an export of `replica` at raw time `raw`. */
export function exportState(replica: Replica, raw: number, options: ExportOptions): StateExport {
  const s = replicaStateOf(replica);
  const to = s.seq;
  const writer = s.self;
  const sentAt = stampAt(s, raw);
  const horizon = s.reg.horizon;
  const records: [IncId, number, number][] = [];
  for (const [id, r] of s.reg.incs) records.push([id, r.wm, r.retired]);
  // An increment's keys are listed now (the change list is reordered by later changes); a whole
  // export walks the live map, at most as many keys as it holds now, so that a map that keeps
  // growing while the chunks are written cannot keep the export going.
  const changed = options.from > 0 ? changedSince(s, options.from) : undefined;
  const count = changed?.length ?? s.keys.size;
  const maxIncs = Math.max(2, options.maxIncs);
  function* chunks(): Generator<Delta> {
    const source: Iterator<KeyRecord> = changed === undefined ? s.keys.values() : changed.values();
    let left = count;
    let nextRecord = 0;
    let first = true;
    while (first || left > 0 || nextRecord < records.length) {
      first = false;
      const table = new IncTable();
      const recs: IncarnationRecord[] = [];
      while (nextRecord < records.length && table.ids.length < maxIncs / 2) {
        const [id, wm, retired] = records[nextRecord++] as [IncId, number, number];
        recs.push([table.of(id), wm, retired]);
      }
      const keys: KeyDelta[] = [];
      while (left > 0 && keys.length < options.maxKeys && table.ids.length < maxIncs / 2) {
        const next = source.next();
        if (next.done === true) {
          left = 0;
          break;
        }
        left--;
        const rec = next.value;
        if (s.keys.get(rec.key) !== rec) continue; // dropped since the listing
        keys.push(keyDelta(rec.key, rec.state, all, table));
      }
      yield {
        node: s.opts.node,
        incarnation: writer,
        fromSeq: options.from,
        toSeq: to,
        sentAtUs: sentAt,
        horizonUs: horizon,
        incarnations: table.ids,
        records: recs,
        keys,
      };
    }
  }
  return { to, writer, keys: count, chunks };
}

export interface ImportResult {
  /** Keys joined now. */
  readonly keys: number;
  /** Items stamped beyond this replica's quarantine limit: held, released as the clock admits them. */
  readonly held: number;
  /** Items beyond the limit that did not fit in the held-data bound (`maxHeldEntries`): dropped. */
  readonly dropped: number;
}

/**
 * Joins one validated snapshot delta (`validateDelta`'s output) into `replica`, as a peer's delta
 * would be joined, except that nothing is attributed to a peer and no stream session moves.
 */
export function importState(replica: Replica, d: Delta, raw: number): ImportResult {
  const s = replicaStateOf(replica);
  const limit = stampAt(s, raw) + s.opts.skewBoundUs + s.opts.maxDelayUs;
  const { now, later } = quarantine(keyParts(d), limit);
  let held = 0;
  let dropped = 0;
  for (const h of later) {
    const items = h.state.entries.length + 1;
    if (s.stats.heldNow + items > s.opts.maxHeldEntries) {
      dropped += items;
      continue;
    }
    s.heldKeys.push({ key: h.key, state: h.state, releaseAt: h.at });
    s.stats.quarantinedEntries += h.state.entries.length;
    s.stats.heldNow += items;
    held += items;
  }
  if (raiseHorizon(s.reg, Math.min(d.horizonUs, limit))) bump(s);
  for (const rec of recordParts(d)) {
    if (rec.wm > limit || rec.retired > limit) s.heldRecords.push({ rec, releaseAt: Math.max(rec.wm, rec.retired) });
    joinRecordPart(s, { id: rec.id, wm: Math.min(rec.wm, limit), retired: Math.min(rec.retired, limit) }, raw, undefined);
  }
  for (const part of now) joinKeyPart(s, part.key, part.state, undefined);
  return { keys: now.length, held, dropped };
}

/**
 * After a snapshot is loaded: retires the incarnations that wrote it (the process that ran them
 * is gone; this one writes under its own id), and starts the warm-up from now, so that a long
 * load does not use up `warmupTimeoutUs` before the first peer could sync. Returns how many
 * incarnations it retired.
 */
export function finishImport(replica: Replica, writers: Iterable<IncId>, raw: number): number {
  const s = replicaStateOf(replica);
  let retired = 0;
  for (const id of writers) {
    const r = s.reg.incs.get(id);
    if (id === s.self || r === undefined || r.retired >= 0) continue;
    writeRetirement(s, r, stampAt(s, raw));
    retired++;
  }
  s.startedAt = raw;
  return retired;
}
