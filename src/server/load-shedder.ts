// Sheds RateLimiter calls with RESOURCE_EXHAUSTED while the event loop is behind because of
// this process's own load, so that a swamped replica answers "retry later" cheaply instead of
// queueing until every caller times out. It starts when the loop is `maxLagMs` behind (the
// sustained tick delay, or a stall in progress: a backlog is read before the timers run) and
// busy (utilization at least 0.9: a loop that lags while mostly idle is starved of CPU by other
// processes, and refusing work would not give it any back), and stops once it is under half
// that lag or under 0.8 busy, so it does not flap. Health checks are another service and are
// never shed.

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
    const calm = this.#shedding ? behind < this.maxLagMs / 2 : behind < this.maxLagMs;
    // Utilization is read only when the loop is behind (the common case reads nothing more).
    if (calm || this.watch.busy() < (this.#shedding ? 0.8 : 0.9)) {
      this.#shedding = false;
      return undefined;
    }
    this.#shedding = true;
    return behind;
  }
}
