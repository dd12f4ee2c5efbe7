// Event-loop utilization on a hand-driven clock, in the shape of performance.eventLoopUtilization:
// the tests move `now` and `active` (ms spent running code) and the watch reads them.

import type { EventLoopUtilization } from "node:perf_hooks";

export function handElu(now: () => number, active: () => number): (since?: EventLoopUtilization) => EventLoopUtilization {
  return (since) => {
    const u = { idle: now() - active(), active: active(), utilization: 0 };
    if (since === undefined) return u;
    const busy = u.active - since.active;
    const all = busy + (u.idle - since.idle);
    return { idle: u.idle - since.idle, active: busy, utilization: all <= 0 ? 0 : busy / all };
  };
}
