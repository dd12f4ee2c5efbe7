// The flush timer that drives the replicated core: tick (watermark, folds, retirements), then
// send each connected peer its coalesced delta. While the core has work it runs every flush
// interval; once the core says its ticks would do nothing until some time (Replica.quietUntil:
// no open slots, nothing left to fold, its idle heartbeat backed off) and every link has sent
// what it had, it sleeps until then. A timer that fires every few ms doing nothing costs an
// idle process about 2% of a core on its own (docs/performance.md, "Idle cost"). Any access,
// applied change or link event calls `wake`, and the loop is back on its interval from the next
// flush on, so a change waits at most one flush interval, as before.

import type { Replica } from "../core/crdt/index.ts";
import type { Clock } from "../server/clock.ts";
import type { Cancel, Scheduler } from "../server/scheduler.ts";

/**
 * What the loop needs of a link: send on a flush, whether it still holds something unsent, and
 * whether it is down (not connected to a peer it should reach).
 */
export interface FlushTarget {
  flush(now: number): void;
  readonly holdsUnsent: boolean;
  readonly down?: boolean;
}

export interface FlushLoopDeps {
  readonly replica: Replica;
  readonly links: () => Iterable<FlushTarget>;
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  readonly flushMs: number;
}

export class FlushLoop {
  #cancel: Cancel | undefined;
  /** Whether the loop is asleep until the core's quiet time (else on its interval). */
  #asleep = false;
  #stopped = false;

  constructor(private readonly deps: FlushLoopDeps) {}

  /** Whether the loop is asleep (for tests and metrics). */
  get asleep(): boolean {
    return this.#asleep;
  }

  start(): void {
    this.#onInterval();
  }

  /** Something changed that the next flush must send or tick over: back to the interval. */
  wake(): void {
    if (this.#asleep && !this.#stopped) this.#onInterval();
  }

  stop(): void {
    this.#stopped = true;
    this.#cancel?.();
    this.#cancel = undefined;
  }

  /** One flush: tick, send, then decide whether to sleep. */
  step(): void {
    const { replica, clock } = this.deps;
    const now = clock();
    let down = false;
    for (const link of this.deps.links()) down ||= link.down === true;
    // A link that is down keeps the heartbeat on its normal pace (heartbeat.ts), and the loop awake.
    replica.linkDown(down);
    replica.tick(now);
    let unsent = false;
    for (const link of this.deps.links()) {
      link.flush(now);
      unsent ||= link.holdsUnsent;
    }
    const until = unsent ? undefined : replica.quietUntil(now);
    if (until !== undefined) this.#sleepUntil(until, now);
    else if (this.#asleep) this.#onInterval();
  }

  #onInterval(): void {
    if (this.#stopped) return;
    this.#cancel?.();
    this.#asleep = false;
    this.#cancel = this.deps.scheduler.every(this.deps.flushMs, () => this.step());
  }

  #sleepUntil(until: number, now: number): void {
    if (this.#stopped) return;
    this.#cancel?.();
    this.#asleep = true;
    const ms = Math.max(this.deps.flushMs, Math.ceil((until - now) / 1000));
    this.#cancel = this.deps.scheduler.after(ms, () => this.step());
  }
}
