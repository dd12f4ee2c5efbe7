// The virtual clock: a binary heap of events ordered by (time, insertion order), so runs are
// deterministic even when events share a microsecond.

interface Event {
  readonly t: number;
  readonly n: number;
  readonly run: () => void;
}

export class EventQueue {
  private heap: Event[] = [];
  private counter = 0;
  now = 0;

  at(t: number, run: () => void): void {
    const e: Event = { t: Math.max(t, this.now), n: this.counter++, run };
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(e, h[p] as Event)) break;
      h[i] = h[p] as Event;
      i = p;
    }
    h[i] = e;
  }

  get size(): number {
    return this.heap.length;
  }

  /** Runs events up to and including time `until`; returns the number run. */
  runUntil(until: number): number {
    let count = 0;
    while (this.heap.length > 0 && (this.heap[0] as Event).t <= until) {
      const e = this.pop();
      this.now = e.t;
      e.run();
      count++;
    }
    this.now = Math.max(this.now, until);
    return count;
  }

  private pop(): Event {
    const h = this.heap;
    const top = h[0] as Event;
    const last = h.pop() as Event;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        const cur = m === i ? last : (h[m] as Event);
        let best = cur;
        if (l < h.length && less(h[l] as Event, best)) {
          m = l;
          best = h[l] as Event;
        }
        if (r < h.length && less(h[r] as Event, best)) {
          m = r;
          best = h[r] as Event;
        }
        if (m === i) break;
        h[i] = best;
        i = m;
      }
      h[i] = last;
    }
    return top;
  }
}

function less(a: Event, b: Event): boolean {
  return a.t < b.t || (a.t === b.t && a.n < b.n);
}
