// What goes to which peer: the forwarding policy the edge configures per peer (a "lane"), and
// the relay election of docs/design.md, "Relays per region". Pure: the edge says which peers it
// can reach and in which region each is; the core decides what each delta carries.
//
//   flood   everything the peer may lack, except what came from it (any topology; the fuzzer's)
//   local   only changes made here (a full mesh of one region: every replica hears every writer)
//   region  a peer of our own region: changes made here, plus data written in other regions
//           (what our region's relay brought in; replicas of a region never relay each other)
//   relay   the other region's relay, from ours: changes made here, plus data written in our
//           region (what our region peers sent us), so a region crosses to each other region once
//   none    nothing: an idle link to a replica of another region that is not a relay pair
//
// Entries and watermark records are chosen by the region of the incarnation that WROTE them, not
// by the neighbour they came from: then, for any incarnation, either all we hold of it goes to a
// peer or none does, so a watermark we send is truthful (whoever holds it holds every entry of
// that incarnation before it: trap 8), however its entries reached us (directly, through a relay
// that has since failed over, or both). An incarnation's region is known once its own stream has
// spoken to us; one we have only heard of is treated as foreign. If a known incarnation's class
// changes (first heard directly after its data reached us by another way, or a peer moved region)
// the affected streams restart from scratch, which is rare and keeps the rule exact. Key metadata
// (limit, prefix, K), which has no single writer, follows the region of the neighbour it came
// from: it only decides whether a key travels at all, and it carries its full state when it does.

import type { IncId } from "./incarnation.ts";

export type Lane = "flood" | "local" | "region" | "relay" | "none";

/** Per replica: the lane of each peer, and the node behind each incarnation heard directly. */
export interface Routing {
  readonly lanes: Map<string, Lane>;
  /** Node of every incarnation whose own stream delivered a delta here. */
  readonly incNode: Map<IncId, string>;
  /** Incarnations seen in others' deltas before their own stream spoke (their class may change). */
  readonly heardOf: Set<IncId>;
  /** Registry horizon when the two maps were last pruned (delta-out.ts prunes when it moves). */
  horizonSeen: number;
}

export function newRouting(): Routing {
  return { lanes: new Map(), incNode: new Map(), heardOf: new Set(), horizonSeen: 0 };
}

/** Lanes that depend on regions (the others ignore them). */
export function isRegional(lane: Lane): boolean {
  return lane === "region" || lane === "relay" || lane === "none";
}

/** The lane of `node`: what the edge set, else the default of the `relay` option. */
export function laneOf(r: Routing, node: string, relayDefault: boolean): Lane {
  return r.lanes.get(node) ?? (relayDefault ? "flood" : "local");
}

/** Whether incarnation `id` was written in our region: ours, or a node whose lane is `region`. */
export function writtenHere(r: Routing, self: IncId, id: IncId | undefined): boolean {
  if (id === undefined || id === self) return true;
  const node = r.incNode.get(id);
  return node !== undefined && r.lanes.get(node) === "region";
}

/**
 * The rule one delta to a peer on `lane` applies to an item (entry, record, key metadata):
 * `writer` is the incarnation the item belongs to (undefined: none, e.g. key metadata, where
 * `origin`'s region stands in), `origin` the incarnation whose delta brought it (undefined: made
 * here), `peer` the receiving incarnation (never echoed to).
 */
export function carries(
  r: Routing,
  self: IncId,
  lane: Lane,
  peer: IncId | undefined,
  writer: IncId | undefined,
  origin: IncId | undefined,
): boolean {
  if (origin === undefined) return lane !== "none";
  if (origin === peer) return false;
  switch (lane) {
    case "flood":
      return true;
    case "local":
    case "none":
      return false;
    case "region":
      return !writtenHere(r, self, writer ?? origin);
    case "relay":
      return writtenHere(r, self, writer ?? origin);
  }
}

/**
 * Notes that `node`'s own stream delivered a delta of incarnation `inc`, which carried entries
 * or records of the incarnations `mentioned`. Returns whether some incarnation changed class (the caller restarts the regional
 * streams: what was held back from a peer under the old class may now be owed to it).
 */
export function noteStream(r: Routing, self: IncId, node: string, inc: IncId, mentioned: readonly IncId[]): boolean {
  let changed = false;
  if (!r.incNode.has(inc)) {
    r.incNode.set(inc, node);
    // Before this, `inc` counted as foreign; it changes class only if its lane says our region.
    if (r.heardOf.delete(inc) && r.lanes.get(node) === "region") changed = true;
  }
  for (const id of mentioned) if (id !== self && !r.incNode.has(id)) r.heardOf.add(id);
  return changed;
}

/** Sets `node`'s lane; returns whether an incarnation already heard from changed class. */
export function setLane(r: Routing, node: string, lane: Lane): boolean {
  const before = r.lanes.get(node) === "region";
  r.lanes.set(node, lane);
  if (before === (lane === "region")) return false;
  for (const n of r.incNode.values()) if (n === node) return true;
  return false;
}

/** Forgets incarnations the registry forgot (the horizon passed them). */
export function forgetIncarnations(r: Routing, keep: (id: IncId) => boolean): void {
  for (const id of r.incNode.keys()) if (!keep(id)) r.incNode.delete(id);
  for (const id of r.heardOf) if (!keep(id)) r.heardOf.delete(id);
}

// ---- Relay election (pure; the edge and the simulator feed it what they can reach) ----

export interface PeerView {
  readonly node: string;
  readonly region: string;
  /** The transport currently has a working link to it (its down-detection decides how fast this falls). */
  readonly reachable: boolean;
}

/**
 * The relay of each region as this replica sees it: the smallest node name among those it can
 * reach in that region (itself included for its own). Replicas that see different links may
 * disagree for a moment; both then send (duplicates join idempotently) or, for at most the
 * link-down detection time, neither does.
 */
export function electRelays(self: string, selfRegion: string, peers: readonly PeerView[]): Map<string, string> {
  const relays = new Map<string, string>([[selfRegion, self]]);
  for (const p of peers) {
    if (!p.reachable) continue;
    const cur = relays.get(p.region);
    if (cur === undefined || p.node < cur) relays.set(p.region, p.node);
  }
  return relays;
}

/** The lane to each peer under `relays` (electRelays): region peers, relay pairs, idle links. */
export function regionLanes(
  self: string,
  selfRegion: string,
  peers: readonly PeerView[],
  relays: ReadonlyMap<string, string>,
): Map<string, Lane> {
  const lanes = new Map<string, Lane>();
  const selfIsRelay = relays.get(selfRegion) === self;
  for (const p of peers) {
    if (p.region === selfRegion) lanes.set(p.node, "region");
    else lanes.set(p.node, selfIsRelay && relays.get(p.region) === p.node ? "relay" : "none");
  }
  return lanes;
}
