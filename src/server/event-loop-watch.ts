// How far behind the event loop is, for load shedding and for deadlines. A 10 ms timer notes
// when the loop last ran its timers; from that, at any moment:
//
//   stall   how long the loop has been continuously behind: since the last tick that came on
//           time, as long as ticks keep coming late or have not come at all; and once it keeps
//           time again, the length of that stall, for as long again (its backlog: connections
//           and frames queued in the kernel, read over the following turns). Calls handled now
//           may have waited that long before the server saw them, so their deadlines, which the
//           server starts counting when it reads their headers, are moved back by it.
//   lag     the smallest delay of the last few ticks: sustained slowness, not one
//           garbage-collection pause (nor a stall that is over: the loop keeps time again).

const TICK_MS = 10;
/** A tick this late or later means the loop is behind. */
const LATE_MS = 20;
const RECENT_TICKS = 3;

export class EventLoopWatch {
  #timer: NodeJS.Timeout | undefined;
  #last: number;
  #behindSince: number | undefined;
  /** The last stall that ended: when, and how long it lasted. */
  #stall = { end: Number.NEGATIVE_INFINITY, length: 0 };
  readonly #recent: number[] = new Array(RECENT_TICKS).fill(0);
  #next = 0;

  constructor(private readonly now: () => number = () => performance.now()) {
    this.#last = now();
  }

  start(): this {
    this.#last = this.now();
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
    this.#timer.unref();
    return this;
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #tick(): void {
    const t = this.now();
    const late = Math.max(0, t - this.#last - TICK_MS);
    if (late >= LATE_MS) this.#behindSince ??= this.#last;
    else if (this.#behindSince !== undefined) {
      this.#stall = { end: t, length: t - this.#behindSince };
      this.#behindSince = undefined;
    }
    this.#recent[this.#next] = late;
    this.#next = (this.#next + 1) % RECENT_TICKS;
    this.#last = t;
  }

  /** Milliseconds the loop has been behind, as of now (0 when it keeps time). */
  stallMs(): number {
    const t = this.now();
    if (t - this.#last - TICK_MS >= LATE_MS) return t - (this.#behindSince ?? this.#last);
    if (this.#behindSince !== undefined) return t - this.#behindSince;
    return t - this.#stall.end < this.#stall.length ? this.#stall.length : 0;
  }

  /** How far behind the loop is for shedding: the sustained delay, or the current stall if longer. */
  behindMs(): number {
    const t = this.now();
    return Math.max(Math.min(...this.#recent), t - this.#last - TICK_MS);
  }
}
