// An independent reference for one bucket: GCRA (ITU-T I.371) on exact BigInt rationals.
// The theoretical arrival time is kept scaled by R (the refill count), so the emission interval
// T = P / R becomes the integer P and nothing is rounded. Shares no code with src/core.

export class Gcra {
  private readonly c: bigint;
  private readonly r: bigint;
  private readonly p: bigint;
  /** TAT * R (microseconds times R). */
  private tat = -(2n ** 62n);

  constructor(capacity: number, refillTokens: number, refillPeriodUs: number) {
    this.c = BigInt(capacity);
    this.r = BigInt(refillTokens);
    this.p = BigInt(refillPeriodUs);
  }

  /** Admits `cost` at `tUs` iff the bucket (full at the start) holds it, GCRA style. */
  offer(tUs: number, cost: number): boolean {
    const t = BigInt(tUs) * this.r;
    const start = this.tat > t ? this.tat : t;
    // allowed iff start - t <= (C - cost) * T, all scaled by R
    if (start - t > (this.c - BigInt(cost)) * this.p) return false;
    this.tat = start + BigInt(cost) * this.p;
    return true;
  }

  /** Tokens available at `tUs` as an exact fraction [numerator, denominator]. */
  level(tUs: number): [bigint, bigint] {
    const t = BigInt(tUs) * this.r;
    const debt = this.tat > t ? this.tat - t : 0n;
    return [this.c * this.p - debt, this.p];
  }
}
