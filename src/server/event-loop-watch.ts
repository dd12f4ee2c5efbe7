// How far behind the event loop is, for load shedding and for deadlines. A 10 ms timer notes
// when the loop last ran its timers; from that, at any moment:
//
//   stall   how long the loop has been continuously behind: since the last tick that came on
//           time, as long as ticks keep coming late or have not come at all; and once it keeps
//           time again, the length of that stall, for as long again (its backlog: connections
//           and frames queued in the kernel, read over the following turns). Calls handled now
//           may have waited that long before the server saw them, so their deadlines, which the
//           server starts counting when it reads their headers, are moved back by it.
//   backlog the stall's length from when it ends until the first tick that finds the loop idle
//           (epoll returns at once while anything is queued, so an idle tick means the queue
//           was empty). Judged only on ticks from the stall's end on: the ticks of the stall
//           itself read as idle (a stopped process is stopped inside epoll_wait, which counts
//           as idle time), so an average over the last few ticks could say "drained" on the
//           first tick after a stop while queued calls were still unread, and admit them
//           (test/server/stalled-replica.test.ts with both cores busy). Still bounded by the
//           "for as long again" of the stall.
//   lag     the smallest delay of the last few ticks: sustained slowness, not one
//           garbage-collection pause (nor a stall that is over: the loop keeps time again).
//   busy    the event loop's utilization (the share of time it ran code rather than waited
//           for events) over the last few ticks, or since the last one if that is longer ago.
//           Lag with a busy loop is this process's own overload; lag with an idle loop is a
//           process starved of CPU by others (or stopped), which shedding would not cure.

const TICK_MS = 10;
/** A tick this late or later means the loop is behind. */
const LATE_MS = 20;
const RECENT_TICKS = 3;
/** Utilization at or above which a loop after a stall is taken to be still reading its backlog. */
const BACKLOG_BUSY = 0.5;

type Utilization = ReturnType<typeof performance.eventLoopUtilization>;

export class EventLoopWatch {
  #timer: NodeJS.Timeout | undefined;
  #last: number;
  #behindSince: number | undefined;
  /** The stall that ended and still covers the most: when, and how long it lasted. */
  #stall = { end: Number.NEGATIVE_INFINITY, length: 0 };
  /** Whether every tick since the last stall ended found the loop busy (its backlog unread). */
  #readingBacklog = false;
  readonly #recent: number[] = new Array(RECENT_TICKS).fill(0);
  readonly #busy: number[] = new Array(RECENT_TICKS).fill(0);
  #next = 0;
  #lastUtilization: Utilization;

  constructor(
    private readonly now: () => number = () => performance.now(),
    private readonly utilization: (since?: Utilization) => Utilization = (since) => performance.eventLoopUtilization(since),
  ) {
    this.#last = now();
    this.#lastUtilization = utilization();
  }

  start(): this {
    this.#last = this.now();
    this.#timer = setInterval(() => this.sample(), TICK_MS);
    this.#timer.unref();
    return this;
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** One tick of the timer (public for tests, which drive it with their own clock). */
  sample(): void {
    const t = this.now();
    const late = Math.max(0, t - this.#last - TICK_MS);
    const u = this.utilization();
    const busy = this.utilization(this.#lastUtilization).utilization;
    if (late >= LATE_MS) this.#behindSince ??= this.#last;
    else {
      if (this.#behindSince !== undefined) {
        // A short stall must not hide a long one whose backlog may still be in the sockets.
        const length = t - this.#behindSince;
        if (this.#activeStall(t) < length) this.#stall = { end: t, length };
        this.#behindSince = undefined;
        this.#readingBacklog = true;
      }
      // This tick's own interval, after the stall: an idle one means nothing was left queued.
      if (busy < BACKLOG_BUSY) this.#readingBacklog = false;
    }
    this.#busy[this.#next] = busy;
    this.#lastUtilization = u;
    this.#recent[this.#next] = late;
    this.#next = (this.#next + 1) % RECENT_TICKS;
    this.#last = t;
  }

  #activeStall(t: number): number {
    return t - this.#stall.end < this.#stall.length ? this.#stall.length : 0;
  }

  /** Milliseconds the loop has been behind, as of now (0 when it keeps time). */
  stallMs(): number {
    const t = this.now();
    return Math.max(this.#ongoingStall(t), this.#activeStall(t));
  }

  /**
   * How long a call read now may have waited before the server saw it: the stall under way, or
   * one that ended, for as long as every tick since its end found the loop busy reading what
   * queued during it. Once a tick finds the loop idle its backlog is drained, so a call read then
   * arrived after the stall and waited for nothing: moving its deadline back would refuse a call
   * that is on time.
   */
  backlogMs(): number {
    const t = this.now();
    const ongoing = this.#ongoingStall(t);
    return this.#readingBacklog ? Math.max(ongoing, this.#activeStall(t)) : ongoing;
  }

  #ongoingStall(t: number): number {
    if (t - this.#last - TICK_MS >= LATE_MS) return t - (this.#behindSince ?? this.#last);
    if (this.#behindSince !== undefined) return t - this.#behindSince;
    return 0;
  }

  /** Utilization of the loop (0 to 1): over the last ticks, or since the last tick if it is late. */
  busy(): number {
    const since = this.utilization(this.#lastUtilization).utilization;
    const late = this.now() - this.#last - TICK_MS >= LATE_MS;
    return late ? since : this.#busy.reduce((a, b) => a + b, 0) / RECENT_TICKS;
  }

  /** How far behind the loop is for shedding: the sustained delay, or the current stall if longer. */
  behindMs(): number {
    const t = this.now();
    return Math.max(Math.min(...this.#recent), t - this.#last - TICK_MS);
  }
}
