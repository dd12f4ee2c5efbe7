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
//
// Idle, the timer slows down: after IDLE_TICKS on-time ticks over which the loop was (almost)
// idle on average (replication's heartbeats still come and go) it ticks every IDLE_TICK_MS, because a timer every 10 ms costs an idle process more than 1% of
// a core by itself (docs/performance.md, "Idle cost"). The first read of any figure (a call
// arriving) takes a sample at once, which sees a stall under way against the slow tick's due
// time, and puts the timer back on TICK_MS. The price: while idle, a stall shorter than
// IDLE_TICK_MS + LATE_MS can end unseen, and the deadlines of calls read after it are not moved
// back by it (at most that long, where a busy loop's watch would have moved them).

import { type Cancel, realScheduler, type Scheduler } from "./scheduler.ts";

const TICK_MS = 10;
const IDLE_TICK_MS = 100;
/** On-time ticks, with the loop's mean utilization below IDLE_BUSY, before the timer slows down (half a second). */
const IDLE_TICKS = 50;
const IDLE_BUSY = 0.05;
/** A tick this late or later means the loop is behind. */
const LATE_MS = 20;
const RECENT_TICKS = 3;
/** Utilization at or above which a loop after a stall is taken to be still reading its backlog. */
const BACKLOG_BUSY = 0.5;

type Utilization = ReturnType<typeof performance.eventLoopUtilization>;

export class EventLoopWatch {
  #cancel: Cancel | undefined;
  #scheduler: Scheduler | undefined;
  /** The running timer's period, and when its next tick is due (a tick later than that is late). */
  #interval = TICK_MS;
  #dueAt: number;
  /** On-time ticks in a row since the last late one or read, and their summed utilization (the slow-down). */
  #idleTicks = 0;
  #idleBusy = 0;
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
    this.#dueAt = this.#last + TICK_MS;
    this.#lastUtilization = utilization();
  }

  /** Starts the timer (real, unref'd timers by default: it never keeps the process alive). */
  start(scheduler: Scheduler = realScheduler({ unref: true })): this {
    this.#scheduler = scheduler;
    this.#last = this.now();
    this.#every(TICK_MS);
    return this;
  }

  stop(): void {
    this.#cancel?.();
    this.#cancel = undefined;
    this.#scheduler = undefined;
  }

  #every(ms: number): void {
    const scheduler = this.#scheduler;
    if (scheduler === undefined) return;
    this.#cancel?.();
    this.#interval = ms;
    this.#dueAt = this.now() + ms;
    this.#cancel = scheduler.every(ms, () => this.#onTick());
  }

  #onTick(): void {
    this.sample();
    if (this.#interval !== TICK_MS || this.#idleTicks < IDLE_TICKS) return;
    if (this.#idleBusy / this.#idleTicks < IDLE_BUSY) this.#every(IDLE_TICK_MS);
    this.#idleTicks = 0;
    this.#idleBusy = 0;
  }

  /** A figure is read (a call arrived): a slowed timer samples now and goes back to TICK_MS. */
  #keepUp(): void {
    this.#idleTicks = 0;
    this.#idleBusy = 0;
    if (this.#interval === TICK_MS) return;
    this.sample();
    this.#idleTicks = 0;
    this.#idleBusy = 0;
    this.#every(TICK_MS);
  }

  /** One tick of the timer (public for tests, which drive it with their own clock). */
  sample(): void {
    const t = this.now();
    const late = Math.max(0, t - this.#dueAt);
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
    const onTime = late < LATE_MS && this.#behindSince === undefined && !this.#readingBacklog;
    this.#idleTicks = onTime ? this.#idleTicks + 1 : 0;
    this.#idleBusy = onTime ? this.#idleBusy + busy : 0;
    this.#busy[this.#next] = busy;
    this.#lastUtilization = u;
    this.#recent[this.#next] = late;
    this.#next = (this.#next + 1) % RECENT_TICKS;
    this.#last = t;
    this.#dueAt = t + this.#interval;
  }

  #activeStall(t: number): number {
    return t - this.#stall.end < this.#stall.length ? this.#stall.length : 0;
  }

  /** Milliseconds the loop has been behind, as of now (0 when it keeps time). */
  stallMs(): number {
    this.#keepUp();
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
    this.#keepUp();
    const t = this.now();
    const ongoing = this.#ongoingStall(t);
    return this.#readingBacklog ? Math.max(ongoing, this.#activeStall(t)) : ongoing;
  }

  #ongoingStall(t: number): number {
    if (t - this.#dueAt >= LATE_MS) return t - (this.#behindSince ?? this.#last);
    if (this.#behindSince !== undefined) return t - this.#behindSince;
    return 0;
  }

  /** Utilization of the loop (0 to 1): over the last ticks, or since the last tick if it is late. */
  busy(): number {
    this.#keepUp();
    const since = this.utilization(this.#lastUtilization).utilization;
    const late = this.now() - this.#dueAt >= LATE_MS;
    return late ? since : this.#busy.reduce((a, b) => a + b, 0) / RECENT_TICKS;
  }

  /** How far behind the loop is for shedding: the sustained delay, or the current stall if longer. */
  behindMs(): number {
    this.#keepUp();
    const t = this.now();
    return Math.max(Math.min(...this.#recent), t - this.#dueAt);
  }
}
