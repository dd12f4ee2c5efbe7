// Sheds RateLimiter calls with RESOURCE_EXHAUSTED while the event loop is behind, so that a
// swamped replica answers "retry later" cheaply instead of queueing until every caller times
// out. It starts when the loop is `maxLagMs` behind (the smoothed tick delay, or a stall in
// progress: a backlog is read before the timers run) and stops once it is back under half of
// that, so it does not flap. Health checks are another service and are never shed.

import type { EventLoopWatch } from "./event-loop-watch.ts";

export class LoadShedder {
  #shedding = false;

  constructor(
    private readonly watch: EventLoopWatch,
    /** Shedding starts this far behind (milliseconds). */
    readonly maxLagMs: number,
  ) {}

  /** How far behind the loop is if this call should be shed, else undefined. */
  shed(): number | undefined {
    const behind = this.watch.behindMs();
    if (this.#shedding ? behind < this.maxLagMs / 2 : behind < this.maxLagMs) {
      this.#shedding = false;
      return undefined;
    }
    this.#shedding = true;
    return behind;
  }
}
