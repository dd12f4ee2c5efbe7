// Relays per region at the edge (mesh.relays): which peers this replica can reach, by region,
// from its outbound links (a link counts while its stream is connected and past the hello, which
// names the peer's region), and the lanes the core's election gives them (forwarding.ts). Run on
// every connect and disconnect, before the first delta of a new link, so the core never sends on
// a lane the election did not choose. The election is local: nobody is asked who the relay is.

import { electRelays, type Lane, type PeerView, type Replica, regionLanes } from "../core/crdt/index.ts";

/** What the router needs of an outbound link (outbound-link.ts). */
export interface RoutedLink {
  readonly address: string;
  readonly peer: { readonly node: string; readonly region: string } | undefined;
}

export class RelayRouter {
  /** The last identity each address answered with, so a link that went down still counts as a peer. */
  readonly #known = new Map<string, { node: string; region: string }>();
  readonly #lanes = new Map<string, Lane>();
  #relays = new Map<string, string>();

  constructor(
    private readonly replica: Replica,
    private readonly self: { readonly node: string; readonly region: string },
  ) {}

  /** The relay of each region as this replica currently elects it. */
  get relays(): ReadonlyMap<string, string> {
    return this.#relays;
  }

  /** The lane the core uses for peer `node` (for metrics and tests). */
  laneOf(node: string): Lane | undefined {
    return this.#lanes.get(node);
  }

  /** Re-runs the election over `links` and sets every lane that changed; returns whether any did. */
  update(links: Iterable<RoutedLink>, raw: number): boolean {
    const byNode = new Map<string, PeerView>();
    for (const link of links) {
      if (link.peer !== undefined) this.#known.set(link.address, { node: link.peer.node, region: link.peer.region });
      const id = this.#known.get(link.address);
      if (id === undefined || id.node === this.self.node) continue;
      // Two addresses of one node: reachable if either link is up.
      const reachable = link.peer !== undefined || byNode.get(id.node)?.reachable === true;
      byNode.set(id.node, { node: id.node, region: id.region, reachable });
    }
    const peers = [...byNode.values()];
    this.#relays = electRelays(this.self.node, this.self.region, peers);
    let changed = false;
    for (const [node, lane] of regionLanes(this.self.node, this.self.region, peers, this.#relays)) {
      if (this.#lanes.get(node) === lane) continue;
      this.#lanes.set(node, lane);
      this.replica.setLane(node, lane, raw);
      changed = true;
    }
    return changed;
  }
}
