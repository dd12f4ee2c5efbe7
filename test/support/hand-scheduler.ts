// A Scheduler (src/server/scheduler.ts) driven by hand: time moves only in `advance`, which runs
// every timer that falls due, in due order, on the clock it keeps (milliseconds).

import type { Cancel, Scheduler } from "../../src/server/scheduler.ts";

interface Timer {
  due: number;
  readonly every: number | undefined;
  readonly run: () => void;
  live: boolean;
}

export class HandScheduler implements Scheduler {
  nowMs = 0;
  readonly #timers = new Set<Timer>();

  every(ms: number, run: () => void): Cancel {
    return this.#add({ due: this.nowMs + ms, every: ms, run, live: true });
  }

  after(ms: number, run: () => void): Cancel {
    return this.#add({ due: this.nowMs + ms, every: undefined, run, live: true });
  }

  /** Timers scheduled now, as [period or "once", ms until due]. */
  pending(): [number | "once", number][] {
    return [...this.#timers].map((t) => [t.every ?? "once", t.due - this.nowMs]);
  }

  /** Moves the clock `ms` forward, running what falls due; returns how many runs happened. */
  advance(ms: number): number {
    const end = this.nowMs + ms;
    let runs = 0;
    for (;;) {
      let next: Timer | undefined;
      for (const t of this.#timers) if (t.due <= end && (next === undefined || t.due < next.due)) next = t;
      if (next === undefined) break;
      this.nowMs = next.due;
      if (next.every === undefined) this.#timers.delete(next);
      else next.due += next.every;
      runs++;
      next.run();
    }
    this.nowMs = end;
    return runs;
  }

  #add(t: Timer): Cancel {
    this.#timers.add(t);
    return () => {
      t.live = false;
      this.#timers.delete(t);
    };
  }
}
