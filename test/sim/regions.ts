// Regions on the simulated network: each node's region, a delay for links that cross regions
// (links inside one have the cluster's), the relay election run on each replica from what it can
// reach (a link counts as down only after `linkDownAfterUs` without reaching the peer, as a real
// transport's keepalive would notice), the lanes that follow from it, and the bytes that cross
// regions, counted with the real codec (deltas as the Peer protocol writes them, acks as their
// protobuf message), per directed link.

import { create, toBinary } from "@bufbuild/protobuf";
import { type Ack, type Delta, electRelays, type Lane, type PeerView, type Replica, regionLanes } from "../../src/core/crdt/index.ts";
import { AckSchema } from "../../src/gen/tokenmesh/v1/peer_pb.ts";
import { encodeDeltaRequest } from "../../src/mesh/delta-wire.ts";
import { ackToProto } from "../../src/mesh/peer-codec.ts";
import type { Network } from "./network.ts";

export interface RegionSpec {
  readonly regionOf: ReadonlyMap<string, string>;
  /** One-way base delay of a link between two regions (inside one: the cluster's link delay). */
  readonly crossDelayUs: number;
  /** How long a peer must be unreachable before a replica's election drops it. */
  readonly linkDownAfterUs: number;
  /** Flood instead of relays (the baseline the relay figures are compared with). */
  readonly flood?: boolean;
}

/** What the cluster needs of a node (cluster.ts's SimNode). */
interface NodeView {
  readonly name: string;
  readonly alive: boolean;
  readonly replica: Replica | undefined;
}

interface ClusterView {
  readonly now: number;
  node(name: string): NodeView;
  raw(node: NodeView): number;
}

export class Regions {
  /** Encoded bytes of deltas and acks on links between regions. */
  crossBytes = 0;
  crossDeltas = 0;
  /** Cross-region bytes per directed link "a>b". */
  readonly perLink = new Map<string, number>();
  /** Times at which a delta with key data left each region for another. */
  readonly dataOut = new Map<string, number[]>();
  /** Elections that changed some region's relay, summed over replicas. */
  relayChanges = 0;
  private readonly lastUp = new Map<string, number>();
  private readonly lanes = new WeakMap<Replica, Map<string, Lane>>();
  private readonly relays = new WeakMap<Replica, Map<string, string>>();

  constructor(
    readonly spec: RegionSpec,
    private readonly net: Network,
    private readonly clock: () => number,
  ) {
    net.delayOf = (a, b) => (this.crossing(a, b) ? spec.crossDelayUs : net.link.delayUs);
  }

  region(node: string): string {
    const r = this.spec.regionOf.get(node);
    if (r === undefined) throw new Error(`no region for ${node}`);
    return r;
  }

  crossing(a: string, b: string): boolean {
    return this.region(a) !== this.region(b);
  }

  /** Re-runs `n`'s election from what it can reach now and sets the lanes that changed. */
  route(c: ClusterView, n: NodeView, peers: readonly string[]): void {
    const r = n.replica;
    if (!n.alive || r === undefined || this.spec.flood === true) return;
    const now = c.now;
    const views: PeerView[] = peers.map((p) => {
      const key = `${n.name}>${p}`;
      if (c.node(p).alive && !this.net.cut(n.name, p, now)) this.lastUp.set(key, now);
      const last = this.lastUp.get(key);
      return { node: p, region: this.region(p), reachable: last !== undefined && now - last <= this.spec.linkDownAfterUs };
    });
    const relays = electRelays(n.name, this.region(n.name), views);
    const before = this.relays.get(r);
    if (before !== undefined && [...relays].some(([region, relay]) => before.get(region) !== relay)) this.relayChanges += 1;
    this.relays.set(r, relays);
    let lanes = this.lanes.get(r);
    if (lanes === undefined) {
      lanes = new Map();
      this.lanes.set(r, lanes);
    }
    for (const [peer, lane] of regionLanes(n.name, this.region(n.name), views, relays)) {
      if (lanes.get(peer) === lane) continue;
      lanes.set(peer, lane);
      r.setLane(peer, lane, c.raw(n));
    }
  }

  /** The relay of `region` as replica `r` last elected it. */
  relayOf(r: Replica, region: string): string | undefined {
    return this.relays.get(r)?.get(region);
  }

  countDelta(from: string, to: string, d: Delta): void {
    if (!this.crossing(from, to)) return;
    this.crossDeltas += 1;
    this.add(from, to, encodeDeltaRequest(d).length);
    if (d.keys.length > 0) {
      const region = this.region(from);
      let times = this.dataOut.get(region);
      if (times === undefined) {
        times = [];
        this.dataOut.set(region, times);
      }
      times.push(this.clock());
    }
  }

  countAck(from: string, to: string, a: Ack): void {
    if (this.crossing(from, to)) this.add(from, to, toBinary(AckSchema, create(AckSchema, ackToProto(a))).length);
  }

  private add(from: string, to: string, bytes: number): void {
    this.crossBytes += bytes;
    const key = `${from}>${to}`;
    this.perLink.set(key, (this.perLink.get(key) ?? 0) + bytes);
  }
}
