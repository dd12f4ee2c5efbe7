// What bounds a missed target, stated in the row itself: a MISS note starts with the measurement
// (from the same rounds) that shows where the figure is held, so a reader of the table never has
// to guess whether a miss is tokenmesh's own code or the stack below it.

import type { Row } from "./report.ts";

/** The row with `bound` in front of its note when it missed, after it otherwise. */
export function withBound(row: Row, bound: string): Row {
  if (row.pass === false) return { ...row, note: `MISS, bounded by: ${bound}; ${row.note}` };
  return { ...row, note: `${row.note}; bound check: ${bound}` };
}

/**
 * The sentence for a floor measured beside tokenmesh: whether the floor alone already misses
 * the target (then the floor is the bound) or meets it (then the rest is tokenmesh's own work).
 * `higherIsBetter`: the target is `>=` (throughput) rather than `<=` (latency, CPU).
 */
export function floorBound(spec: {
  /** How the floor is named the first time, e.g. "floor-nice (the floor through nice-grpc)". */
  floorName: string;
  /** How it is named after that. */
  floorShort: string;
  floorRatio: number;
  mineOverFloor: number;
  bound: number;
  higherIsBetter: boolean;
  detail: string;
}): string {
  if (!Number.isFinite(spec.floorRatio) || spec.floorRatio <= 0 || !Number.isFinite(spec.mineOverFloor))
    return `${spec.floorName}: no usable ratio in these rounds (${spec.detail})`;
  const floorMisses = spec.higherIsBetter ? spec.floorRatio < spec.bound : spec.floorRatio > spec.bound;
  const verdict = floorMisses
    ? `${spec.floorName} alone is ${spec.floorRatio.toFixed(2)}x, past the ${spec.bound}x target, so no handler on it can meet it`
    : `${spec.floorName} alone is ${spec.floorRatio.toFixed(2)}x, within the ${spec.bound}x target, so the rest is tokenmesh's own per-call work`;
  return `${verdict}; tokenmesh is ${spec.mineOverFloor.toFixed(2)}x ${spec.floorShort} (${spec.detail})`;
}
