// Over-admission by the exact window definition: over every interval [s, t], what was admitted
// minus what one ideal bucket could admit there, C + r * (t - s), from the arrival log of
// admitted one-token decisions.
//
// A client only knows that an admission happened between sending the call and receiving the
// answer. `windowExcess` counts in a window only the admissions whose whole [sent, received]
// interval lies inside it, so what it reports is certain: the log proves at least that much
// excess (it can only understate, by about r times the calls' latency). The largest value is
// reached on a window that starts at some call's send time and ends at some call's receive time.

export interface Admission {
  readonly sentMs: number;
  readonly receivedMs: number;
}

export interface WindowExcess {
  /** Largest proven excess over any window (tokens; 0 or below: no window over-admitted). */
  readonly excess: number;
  /** The window where it happened (epoch ms) and the admissions certainly inside it. */
  readonly fromMs: number;
  readonly toMs: number;
  readonly admitted: number;
}

/** `r` in tokens per second. O(n^2) in the number of admissions (a test's few thousand at most). */
export function windowExcess(admissions: readonly Admission[], capacity: number, r: number): WindowExcess {
  const bySent = [...admissions].sort((a, b) => a.sentMs - b.sentMs);
  let best: WindowExcess = { excess: -capacity, fromMs: Number.NaN, toMs: Number.NaN, admitted: 0 };
  for (let i = 0; i < bySent.length; i++) {
    const s = (bySent[i] as Admission).sentMs;
    // Admissions sent at or after s, by when they were answered: the window [s, t] holds the
    // first k of them once t reaches the k-th answer.
    const ends = bySent
      .slice(i)
      .map((a) => a.receivedMs)
      .sort((a, b) => a - b);
    for (let k = 0; k < ends.length; k++) {
      const t = ends[k] as number;
      const excess = k + 1 - capacity - (r * (t - s)) / 1000;
      if (excess > best.excess) best = { excess, fromMs: s, toMs: t, admitted: k + 1 };
    }
  }
  return best;
}
