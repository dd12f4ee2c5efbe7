// Coalesces concurrent calls into one request. A call joins the open batch; the batch is sent
// when it reaches `maxSize` or when its window closes, whichever is first, and each caller gets
// its own answer back. The window timer comes from an injectable scheduler so tests can close
// windows by hand.
//
// With the default window (0) a batch waits only when it has to: if none of this batcher's
// batches is in flight, the batch is sent at the end of the current tick (a microtask), so a
// lone call goes out at once and calls made in the same synchronous run still share one RPC.
// While a batch is in flight, new calls wait for the end of the event-loop turn (the scheduler),
// so requests that arrive together under load share an RPC. (At one call in flight the old
// always-setImmediate window measured within noise of no batching at all, ~10 us: the round
// trip's cost was the transport, see wire/grpc-connection.ts; this keeps a lone call from
// waiting on anything else the loop has queued.)

export type Settled<R> = { readonly ok: true; readonly value: R } | { readonly ok: false; readonly error: unknown };

/** Starts a window; returns a function that cancels it. */
export type Scheduler = (flush: () => void, windowMs: number) => () => void;

/**
 * A window of 0 closes after the current event-loop turn (setImmediate): every call made while
 * handling one batch of I/O callbacks, e.g. requests that arrived together, shares an RPC, at a
 * delay well under a millisecond. A positive window uses a timer (Node rounds to >= 1 ms).
 * The batcher asks for a window of 0 only while one of its batches is in flight (see above).
 */
export const realScheduler: Scheduler = (flush, windowMs) => {
  if (windowMs <= 0) {
    const handle = setImmediate(flush);
    return () => clearImmediate(handle);
  }
  const handle = setTimeout(flush, windowMs);
  return () => clearTimeout(handle);
};

export interface BatcherOptions<T, R> {
  readonly windowMs: number;
  readonly maxSize: number;
  readonly scheduler: Scheduler;
  /** Sends one batch; must settle with exactly one entry per item, in order, and never reject. */
  readonly send: (items: readonly T[]) => Promise<readonly Settled<R>[]>;
}

interface Pending<T, R> {
  readonly item: T;
  readonly resolve: (value: R) => void;
  readonly reject: (error: unknown) => void;
}

export class Batcher<T, R> {
  readonly #options: BatcherOptions<T, R>;
  #maxSize: number;
  #open: Pending<T, R>[] = [];
  #cancelWindow: (() => void) | undefined;
  readonly #inFlight = new Set<Promise<void>>();
  /** Batches sent and not yet answered (drops before their callers are resolved). */
  #unanswered = 0;
  /** Batches sent so far (for tests and stats). */
  batchesSent = 0;

  constructor(options: BatcherOptions<T, R>) {
    this.#options = options;
    this.#maxSize = options.maxSize;
  }

  get maxSize(): number {
    return this.#maxSize;
  }

  /** Lowers the size cap for batches opened from now on (e.g. to a server's smaller limit). */
  lowerMaxSize(size: number): void {
    this.#maxSize = Math.max(1, Math.min(this.#maxSize, size));
  }

  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#open.push({ item, resolve, reject });
      if (this.#open.length >= this.#maxSize) this.flush();
      else this.#cancelWindow ??= this.#openWindow();
    });
  }

  #openWindow(): () => void {
    if (this.#options.windowMs <= 0 && this.#unanswered === 0) {
      let cancelled = false;
      queueMicrotask(() => {
        if (!cancelled) this.flush();
      });
      return () => {
        cancelled = true;
      };
    }
    return this.#options.scheduler(() => this.flush(), this.#options.windowMs);
  }

  /** Sends the open batch now, if any. */
  flush(): void {
    this.#cancelWindow?.();
    this.#cancelWindow = undefined;
    const batch = this.#open;
    if (batch.length === 0) return;
    this.#open = [];
    this.batchesSent++;
    this.#unanswered++;
    const sent = this.#run(batch);
    this.#inFlight.add(sent);
    void sent.finally(() => this.#inFlight.delete(sent));
  }

  /** Flushes and waits until every batch sent so far has been answered. */
  async drain(): Promise<void> {
    this.flush();
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  async #run(batch: readonly Pending<T, R>[]): Promise<void> {
    let settled: readonly Settled<R>[];
    try {
      settled = await this.#options.send(batch.map((p) => p.item));
    } catch (error) {
      settled = batch.map(() => ({ ok: false, error }));
    }
    // Before any caller runs again: a caller that calls straight back must see nothing in flight.
    this.#unanswered--;
    batch.forEach((p, i) => {
      const s = settled[i];
      if (s === undefined) p.reject(new Error(`batch answered ${settled.length} of ${batch.length} calls`));
      else if (s.ok) p.resolve(s.value);
      else p.reject(s.error);
    });
  }
}
