// The one independent reference for one token bucket that the tests compare against (the core
// bucket, the replica alone, and the simulator's ideal): GCRA (ITU-T I.371) on exact BigInt
// rationals. It shares no code with src/core: time is scaled by the refill count R so that the
// emission interval T = P/R becomes the integer P, and the burst tolerance C*T becomes C*P.

/** max() for bigints (Math.max does not take them). */
const later = (a: bigint, b: bigint): bigint => (a > b ? a : b);

export class GcraReference {
  readonly #capacity: bigint;
  readonly #refill: bigint;
  readonly #period: bigint;
  /** Theoretical arrival time, scaled by R (units: microseconds * R); far past: full at any start time. */
  #tat = -(2n ** 62n);

  constructor(capacity: number, refillTokens: number, refillPeriodUs: number) {
    this.#capacity = BigInt(capacity);
    this.#refill = BigInt(refillTokens);
    this.#period = BigInt(refillPeriodUs);
  }

  /**
   * A bucket of this limit holding `tokens` whole tokens at `tUs`: how an ideal bucket hands its
   * level to a new limit at a switch (the caller clamps it to the new capacity).
   */
  static holding(capacity: number, refillTokens: number, refillPeriodUs: number, tUs: number, tokens: bigint): GcraReference {
    const ref = new GcraReference(capacity, refillTokens, refillPeriodUs);
    ref.#tat = ref.#scaled(tUs) + (ref.#capacity - tokens) * ref.#period;
    return ref;
  }

  #scaled(tUs: number): bigint {
    return BigInt(tUs) * this.#refill;
  }

  /** Would `cost` tokens be admitted at `tUs`, and how long until they would (microseconds, rounded up). */
  check(tUs: number, cost: number): { allowed: boolean; retryAfterUs: number } {
    const t = this.#scaled(tUs);
    const start = later(this.#tat, t);
    const excess = start + BigInt(cost) * this.#period - t - this.#capacity * this.#period;
    if (excess <= 0n) return { allowed: true, retryAfterUs: 0 };
    return { allowed: false, retryAfterUs: Number((excess + this.#refill - 1n) / this.#refill) };
  }

  consume(tUs: number, cost: number): boolean {
    const { allowed } = this.check(tUs, cost);
    if (allowed) {
      const t = this.#scaled(tUs);
      this.#tat = later(this.#tat, t) + BigInt(cost) * this.#period;
    }
    return allowed;
  }

  /** Tokens available at `tUs` as an exact fraction [numerator, denominator]. */
  level(tUs: number): [bigint, bigint] {
    const t = this.#scaled(tUs);
    const debt = this.#tat > t ? this.#tat - t : 0n;
    return [this.#capacity * this.#period - debt, this.#period];
  }

  /** Whole tokens available at `tUs`. */
  remaining(tUs: number): number {
    const t = this.#scaled(tUs);
    const debt = this.#tat > t ? this.#tat - t : 0n;
    return Number((this.#capacity * this.#period - debt) / this.#period);
  }

  /** Microseconds until full at `tUs`, rounded up. */
  resetAfterUs(tUs: number): number {
    const t = this.#scaled(tUs);
    const debt = this.#tat > t ? this.#tat - t : 0n;
    return Number((debt + this.#refill - 1n) / this.#refill);
  }
}
