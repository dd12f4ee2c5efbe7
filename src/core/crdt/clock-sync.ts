// The stamping clock (trap 3). A replica whose clock is an hour fast must not stamp slots an
// hour ahead, or everyone else counts its consumption an hour late. Each ack echoes when the
// delta was sent (t1, sender clock) and received (t2, receiver clock); with the ack's arrival
// t4 that is an NTP exchange: offset = t2 - (t1 + t4) / 2, error at most half the round trip.
// The best (shortest round trip) recent sample per peer is kept, and the replica's correction is
// the lower median of {0} and those offsets: every replica then agrees on median(raw clocks),
// a majority of sane clocks outvotes a minority of wrong ones, and two replicas settle on one.

const SAMPLES_PER_PEER = 16;

interface Sample {
  readonly offset: number;
  readonly rtt: number;
}

export class ClockSync {
  private readonly samples = new Map<string, Sample[]>();
  /** The median is read on every stamp and changes only with a sample: keep it. */
  private cached: number | undefined;

  /** Records one exchange with `peer`: sent at t1 (ours), received at t2 (theirs), ack back at t4 (ours). */
  addSample(peer: string, t1: number, t2: number, t4: number): void {
    const rtt = t4 - t1;
    if (!(rtt >= 0) || !Number.isFinite(t2)) return;
    const list = this.samples.get(peer) ?? [];
    list.push({ offset: Math.round(t2 - (t1 + t4) / 2), rtt });
    if (list.length > SAMPLES_PER_PEER) list.shift();
    this.samples.set(peer, list);
    this.cached = undefined;
  }

  hasSamples(): boolean {
    return this.samples.size > 0;
  }

  /** Microseconds to add to the raw clock. */
  correction(): number {
    if (this.cached === undefined) this.cached = this.median();
    return this.cached;
  }

  private median(): number {
    const offsets = [0];
    for (const list of this.samples.values()) {
      let best: Sample | undefined;
      for (const s of list) if (best === undefined || s.rtt < best.rtt) best = s;
      if (best !== undefined) offsets.push(best.offset);
    }
    offsets.sort((a, b) => a - b);
    return offsets[Math.floor((offsets.length - 1) / 2)] ?? 0;
  }
}
