// The only clock the server reads: wall time in integer microseconds, advanced by the monotonic
// timer so that a wall-clock step (NTP) never moves bucket time backwards within a process.

export type Clock = () => number;

export function systemClock(): Clock {
  const origin = performance.timeOrigin;
  return () => Math.floor((origin + performance.now()) * 1000);
}
