// The timers the server's long-lived loops run on, behind one interface so that tests and
// benches can drive them by hand; real Node timers by default. Only periodic work goes through
// it (the flush loop, the event-loop watch, the warm-up poll); one-off timeouts stay local.

/** Stops a scheduled run; calling it again does nothing. */
export type Cancel = () => void;

export interface Scheduler {
  /** Runs `run` every `ms` milliseconds until cancelled. */
  every(ms: number, run: () => void): Cancel;
  /** Runs `run` once after `ms` milliseconds unless cancelled first. */
  after(ms: number, run: () => void): Cancel;
}

/** Node's setInterval / setTimeout. `unref`: the timer does not keep the process alive. */
export function realScheduler(options: { readonly unref?: boolean } = {}): Scheduler {
  const held = <T extends NodeJS.Timeout>(timer: T): T => (options.unref === true ? timer.unref() : timer);
  return {
    every(ms, run) {
      const timer = held(setInterval(run, ms));
      return () => clearInterval(timer);
    },
    after(ms, run) {
      const timer = held(setTimeout(run, ms));
      return () => clearTimeout(timer);
    },
  };
}
