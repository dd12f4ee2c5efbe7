// Join of two key states, and the normal form every state is kept in.
//
// join(a, b) = normalize(componentwise join): config by LWW, prefix by its total order (the
// loser's F joins K so whatever it folded and the winner did not is charged as late, once),
// K and entries by max. normalize then (1) forgets incarnations born before the horizon,
// (2) moves entries below tau into K (late data, charged at tau), (3) stores K only where it
// exceeds F. Every rule depends only on quantities that grow under join (horizon, tau, K), so
// normalizing early or late gives the same result: that is what keeps the join associative.

import { isForgotten } from "./incarnation.ts";
import { compareConfig, maxConfig } from "./key-config.ts";
import { cloneKeyState, comparePrefix, type Entry, findEntry, type KeyState, type Prefix, prefixWithF } from "./key-state.ts";

export interface JoinChanges {
  /** Entries of `into` that were added or raised (the same objects now in `into.entries`). */
  readonly entries: Entry[];
  /** Whether config, prefix, K or horizon changed. */
  meta: boolean;
}

function maxInto(m: Map<string, number>, inc: string, n: number): boolean {
  const cur = m.get(inc);
  if (cur === undefined || n > cur) {
    m.set(inc, n);
    return true;
  }
  return false;
}

/** Puts `into` in normal form; returns whether anything changed. */
export function normalizeKey(into: KeyState): boolean {
  let changed = false;
  const h = into.horizon;
  const p = into.prefix;
  const cfg = maxConfig(into.config, p.config);
  if (cfg !== into.config) {
    into.config = cfg;
    changed = true;
  }
  let F: Map<string, number> | undefined;
  for (const inc of p.F.keys()) {
    if (isForgotten(inc, h)) {
      F ??= new Map(p.F);
      F.delete(inc);
    }
  }
  if (F !== undefined) {
    into.prefix = prefixWithF(p, F);
    changed = true;
  }
  // Most states have nothing to drop: copy the entries only from the first one that goes.
  let kept: Entry[] | undefined;
  const entries = into.entries;
  const tau = into.prefix.tau;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as Entry;
    const forgotten = isForgotten(e.inc, h);
    if (forgotten || e.slot < tau) {
      if (!forgotten) maxInto(into.K, e.inc, e.c1);
      changed = true;
      kept ??= entries.slice(0, i);
    } else kept?.push(e);
  }
  if (kept !== undefined) into.entries = kept;
  for (const [inc, n] of into.K) {
    if (isForgotten(inc, h) || n <= (into.prefix.F.get(inc) ?? 0)) {
      into.K.delete(inc);
      changed = true;
    }
  }
  return changed;
}

function raiseK(into: KeyState, inc: string, n: number): boolean {
  return n > (into.prefix.F.get(inc) ?? 0) && maxInto(into.K, inc, n);
}

/** Joins `other` into `into` (mutating it), then normalizes. Reports what changed. */
export function joinKeyInto(into: KeyState, other: Readonly<KeyState>): JoinChanges {
  const changes: JoinChanges = { entries: [], meta: false };
  if (other.horizon > into.horizon) {
    into.horizon = other.horizon;
    changes.meta = true;
  }
  if (compareConfig(other.config, into.config) > 0) {
    into.config = other.config;
    changes.meta = true;
  }
  // The effective K of each side is max(K, F); fold both sides' F into K before choosing.
  const otherWins = comparePrefix(other.prefix, into.prefix) > 0;
  const loserF: ReadonlyMap<string, number> = otherWins ? into.prefix.F : other.prefix.F;
  if (otherWins) {
    into.prefix = copyPrefix(other.prefix);
    changes.meta = true;
  }
  // K is stored only above F: a row at or below the winner's F carries nothing (and adding it
  // only for normalize to drop it again would report a change and echo it around the mesh).
  for (const [inc, n] of loserF) if (raiseK(into, inc, n)) changes.meta = true;
  for (const [inc, n] of other.K) if (raiseK(into, inc, n)) changes.meta = true;

  for (const e of other.entries) {
    const at = findEntry(into.entries, e.slot, e.inc);
    if (at >= 0) {
      const mine = into.entries[at] as Entry;
      if (e.c1 > mine.c1 || e.c0 > mine.c0) {
        mine.c1 = Math.max(mine.c1, e.c1);
        mine.c0 = Math.max(mine.c0, e.c0);
        changes.entries.push(mine);
      }
    } else {
      const added: Entry = { inc: e.inc, slot: e.slot, c0: e.c0, c1: e.c1, seq: 0 };
      into.entries.splice(~at, 0, added);
      changes.entries.push(added);
    }
  }
  if (normalizeKey(into)) changes.meta = true;
  return changes;
}

function copyPrefix(p: Prefix): Prefix {
  return prefixWithF(p, new Map(p.F));
}

/** Pure join for tests and tools: neither argument is touched. */
export function joinKey(a: Readonly<KeyState>, b: Readonly<KeyState>): KeyState {
  const out = cloneKeyState(a);
  joinKeyInto(out, b);
  return out;
}
