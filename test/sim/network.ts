// The simulated network: per directed link a delay, jitter (which reorders), loss and
// duplication; an optional topology (pairs that may talk, so data must be relayed); and
// partitions (time windows during which sides cannot reach each other). Messages in flight are
// events on the shared virtual clock. Each message carries its size in bytes (the cluster sends
// what the real codec wrote), counted per directed link and kind, so rows can report payload.

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

/**
 * What a message is, for the byte counts: a delta (or one chunk of one), an ack, or strict
 * mode's escrow request or grant (handed over as objects, not bytes: counted, with size 0).
 */
export type MessageKind = "delta" | "ack" | "escrow";

/** One message of a sequence: its size, and what delivering it does. */
export interface Message {
  readonly bytes: number;
  readonly deliver: () => void;
}

/** Messages and bytes sent over one directed link (counted when sent, lost or not). */
export interface LinkTraffic {
  deltaMessages: number;
  deltaBytes: number;
  ackMessages: number;
  ackBytes: number;
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
  /** Per directed link "a>b": what was sent over it. Read with `traffic`. */
  private readonly links = new Map<string, LinkTraffic>();

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

  /** What was sent over a→b so far (zeros if nothing). */
  traffic(a: string, b: string): Readonly<LinkTraffic> {
    return this.links.get(`${a}>${b}`) ?? { deltaMessages: 0, deltaBytes: 0, ackMessages: 0, ackBytes: 0 };
  }

  /** Bytes of `kind` sent from any node of `from` to any node of `to` (e.g. two regions). */
  bytesBetween(from: readonly string[], to: readonly string[], kind: MessageKind = "delta"): number {
    let n = 0;
    for (const a of from) {
      for (const b of to) {
        const t = this.traffic(a, b);
        n += kind === "delta" ? t.deltaBytes : t.ackBytes;
      }
    }
    return n;
  }

  private count(a: string, b: string, kind: MessageKind, bytes: number): void {
    const id = `${a}>${b}`;
    let t = this.links.get(id);
    if (t === undefined) {
      t = { deltaMessages: 0, deltaBytes: 0, ackMessages: 0, ackBytes: 0 };
      this.links.set(id, t);
    }
    if (kind === "escrow") return;
    if (kind === "delta") {
      t.deltaMessages += 1;
      t.deltaBytes += bytes;
    } else {
      t.ackMessages += 1;
      t.ackBytes += bytes;
    }
  }

  /** Sends one message over a→b now; it may be dropped, delayed, duplicated. */
  send(a: string, b: string, kind: MessageKind, message: Message, reliable = false): void {
    this.sendSequence(a, b, kind, [message], reliable);
  }

  /**
   * Sends messages that a stream carries in order (the chunks of one delta) over a→b now. Each
   * meets the link's faults on its own (loss, duplication, jitter, partitions), but as on the
   * ordered stream the mesh uses: none arrives before the one sent ahead of it (duplicates
   * aside), and a lost one loses the rest, as a broken stream loses its tail. Separate
   * sequences still overtake each other. A sequence of one is a single message.
   */
  sendSequence(a: string, b: string, kind: MessageKind, messages: readonly Message[], reliable = false): void {
    const t = this.queue.now;
    let notBefore = t;
    for (const m of messages) {
      this.sent += 1;
      this.count(a, b, kind, m.bytes);
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
        // The first copy keeps the stream's order; a duplicate may arrive at any time.
        const at = i === 0 ? Math.max(notBefore, t + delay) : t + delay;
        if (i === 0) notBefore = at;
        this.inFlight += 1;
        this.queue.at(at, () => {
          this.inFlight -= 1;
          // A partition that began while the message was in flight drops it too.
          if (this.cut(a, b, this.queue.now)) {
            this.blocked += 1;
            return;
          }
          m.deliver();
        });
      }
    }
  }
}
