// The simulated network: per directed link a delay, jitter (which reorders), loss and
// duplication; an optional topology (pairs that may talk, so data must be relayed); and
// partitions (time windows during which sides cannot reach each other). Messages in flight are
// events on the shared virtual clock.

import type { EventQueue } from "./event-queue.ts";
import type { Prng } from "./prng.ts";

export interface LinkSpec {
  /** Base one-way delay (microseconds). */
  readonly delayUs: number;
  /** Extra delay uniform in [0, jitterUs]: messages overtake each other. */
  readonly jitterUs: number;
  readonly loss: number;
  readonly duplicate: number;
}

export interface Partition {
  readonly from: number;
  readonly to: number;
  /** Side index per node; nodes on different sides cannot talk during [from, to). */
  readonly side: ReadonlyMap<string, number>;
}

export class Network {
  readonly partitions: Partition[] = [];
  /** Undirected edges; undefined means a full mesh. */
  private readonly edges: Set<string> | undefined;
  sent = 0;
  lost = 0;
  duplicated = 0;
  blocked = 0;
  /** Messages scheduled but not yet delivered. */
  inFlight = 0;
  /** Base one-way delay of a→b when it is not the link's (regions: test/sim/regions.ts). */
  delayOf: ((a: string, b: string) => number) | undefined;

  constructor(
    private readonly queue: EventQueue,
    private readonly rng: Prng,
    public link: LinkSpec,
    topology?: readonly (readonly [string, string])[],
  ) {
    this.edges = topology === undefined ? undefined : new Set(topology.flatMap(([a, b]) => [`${a}>${b}`, `${b}>${a}`]));
  }

  /** Nodes `node` has a link to, among `all`. */
  neighbours(node: string, all: readonly string[]): string[] {
    return all.filter((n) => n !== node && (this.edges === undefined || this.edges.has(`${node}>${n}`)));
  }

  /** Whether a partition separates a and b at t. */
  cut(a: string, b: string, t: number): boolean {
    for (const p of this.partitions) {
      if (t >= p.from && t < p.to && p.side.get(a) !== p.side.get(b)) return true;
    }
    return false;
  }

  /** Sends `deliver` over a→b now; it may be dropped, delayed, duplicated. */
  send(a: string, b: string, deliver: () => void, reliable = false): void {
    const t = this.queue.now;
    this.sent += 1;
    if (this.cut(a, b, t)) {
      this.blocked += 1;
      return;
    }
    if (!reliable && this.rng.chance(this.link.loss)) {
      this.lost += 1;
      return;
    }
    const copies = !reliable && this.rng.chance(this.link.duplicate) ? 2 : 1;
    if (copies === 2) this.duplicated += 1;
    for (let i = 0; i < copies; i++) {
      const delay = (this.delayOf?.(a, b) ?? this.link.delayUs) + Math.floor(this.rng.next() * (this.link.jitterUs + 1));
      this.inFlight += 1;
      this.queue.at(t + delay, () => {
        this.inFlight -= 1;
        // A partition that began while the message was in flight drops it too.
        if (this.cut(a, b, this.queue.now)) {
          this.blocked += 1;
          return;
        }
        deliver();
      });
    }
  }
}
