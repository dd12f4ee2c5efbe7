// A small seeded PRNG (mulberry32) so every run of the simulator replays exactly from its seed.

export class Prng {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  /** `digits` random hex digits. */
  hex(digits = 18): string {
    let out = "";
    while (out.length < digits)
      out += Math.floor(this.next() * 0x100000000)
        .toString(16)
        .padStart(8, "0");
    return out.slice(0, digits);
  }

  /** An independent stream derived from this one (so adding a consumer does not shift others). */
  fork(salt: number): Prng {
    return new Prng((this.seed * 2654435761 + salt * 40503 + 1) >>> 0);
  }
}
