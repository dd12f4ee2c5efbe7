// The fold: slots before a target are replayed into a new prefix (tau, level, F), so the state
// of a key stays bounded by the replication lag, not by its history.
//
// The target must be one the whole mesh would choose from replicated state (trap 9): the
// replica passes max(tau, min over live incarnations of their watermark), where "live" is
// decided by replicated retirement records, never by a local timeout. Late data (K above F)
// is baked in here, once; the cap at C applies to it and never to the tail (trap 7).

import { sameConfig } from "./key-config.ts";
import { type Entry, FoldedPrefix, type KeyState, prefixWithF } from "./key-state.ts";
import { Walker } from "./replay.ts";

/** Folds `k` up to `target` in place. Returns false (and leaves `k` alone) if nothing moves. */
export function foldKeyInto(k: KeyState, target: number): boolean {
  if (!(target > k.prefix.tau) || !Number.isFinite(target)) return false;
  // walk(k, target, true), inline: the running totals become the new F without a copy.
  const w = new Walker(k);
  const entries = k.entries;
  while (w.consumed < entries.length && (entries[w.consumed] as Entry).slot < target) w.consume(entries[w.consumed] as Entry);
  w.advance(target);
  let sumF = 0;
  for (const n of w.running.values()) sumF += n;
  const prefix = new FoldedPrefix(
    target,
    w.level,
    w.config,
    w.running,
    sumF,
    k.prefix.lateCharged + w.lateCharged,
    k.prefix.forgiven + w.forgiven,
  );
  k.prefix = prefix;
  k.entries = w.consumed === entries.length ? [] : entries.slice(w.consumed);
  if (k.K.size > 0) k.K.clear();
  return true;
}

/** Pure fold for tests. */
export function foldKey(k: Readonly<KeyState>, target: number): KeyState {
  const out: KeyState = {
    ...k,
    prefix: prefixWithF(k.prefix, new Map(k.prefix.F)),
    K: new Map(k.K),
    entries: k.entries.map((e) => ({ ...e })),
  };
  foldKeyInto(out, target);
  return out;
}

/**
 * A key whose prefix is full, with nothing late and an empty tail, answers exactly like a new
 * bucket: it can be dropped by any replica on its own (entries are self-describing, so a peer
 * that later sends data for it loses nothing).
 */
export function isCollectable(k: Readonly<KeyState>): boolean {
  return (
    k.entries.length === 0 &&
    k.K.size === 0 &&
    k.prefix.level >= k.prefix.config.rate.capacityUnits &&
    sameConfig(k.config, k.prefix.config)
  );
}
