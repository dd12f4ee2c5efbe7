// Keys this replica has stopped holding on purpose, by prefix: the edge names them (a policy
// removed by a reload is the prefix "<policy>\u0000" of its bucket ids), the replica drops what
// it holds of them, and from then on peers' parts for them are skipped rather than joined. A
// peer that still runs the old config would otherwise keep the keys alive here forever.
//
// Only key parts are skipped: the registry records, watermarks and horizon of the same delta
// join as usual, so every other key converges as before. The local running totals of a dropped
// key are kept (as for any dropped key), so this incarnation's later writes to it, if the prefix
// is allowed again, are still charged from where they left off.

import type { KeyRecord, ReplicaState } from "./replica-state.ts";
import { dropRecord } from "./timers.ts";

/** Whether `key` falls under one of the prefixes this replica ignores. */
export function isIgnoredKey(s: ReplicaState, key: string): boolean {
  const prefixes = s.ignoredPrefixes;
  // The common case, no removed policy: one length check per key part.
  if (prefixes.length === 0) return false;
  for (const p of prefixes) if (key.startsWith(p)) return true;
  return false;
}

/**
 * Replaces the ignored prefixes with `prefixes`, and drops every held key (and every held early
 * part of one) that now falls under them. A prefix left out of the new list is joined again from
 * the next delta on. Returns the keys dropped, for the edge's own bookkeeping (its LRU).
 */
export function ignoreKeyPrefixes(s: ReplicaState, prefixes: readonly string[]): string[] {
  s.ignoredPrefixes = prefixes.filter((p) => p.length > 0);
  const dropped: string[] = [];
  if (s.ignoredPrefixes.length === 0) return dropped;
  const doomed: KeyRecord[] = [];
  for (const rec of s.keys.values()) if (isIgnoredKey(s, rec.key)) doomed.push(rec);
  for (const rec of doomed) {
    dropRecord(s, rec);
    dropped.push(rec.key);
  }
  const keep = [];
  for (const h of s.heldKeys) {
    if (isIgnoredKey(s, h.key)) s.stats.heldNow -= h.state.entries.length + 1;
    else keep.push(h);
  }
  s.heldKeys = keep;
  return dropped;
}
