// Coalesces concurrent calls into one request. A call joins the open batch; the batch is sent
// when it reaches `maxSize` or when its window closes, whichever is first, and each caller gets
// its own answer back.
//
// With the default window (0) a batch waits only while it has to, like TCP's Nagle rule:
//   - if none of this batcher's batches is in flight, the batch is sent at the end of the current
//     tick (a microtask): a lone call goes out at once, and calls made in the same synchronous
//     run still share one RPC;
//   - while a batch is in flight, new calls gather and are sent together when it is answered, so
//     under load the batch holds whatever arrived during one round trip.
// Measured in bench/ (the user-level scenario, 50 connections), sending at the end of every
// event-loop turn instead made ~17 decisions per RPC against ~24 this way, and cost the app and
// the service ~8 us more CPU per request. A call's deadline counts from when its batch opened,
// so waiting behind a slow batch never stretches a call beyond `deadlineMs`.
//
// A positive window, or an injected scheduler (tests close windows by hand), replaces the rule:
// the batch then waits for its window.

export type Settled<R> = { readonly ok: true; readonly value: R } | { readonly ok: false; readonly error: unknown };

/** Starts a window; returns a function that cancels it. */
export type Scheduler = (flush: () => void, windowMs: number) => () => void;

/** A positive window uses a timer (Node rounds to >= 1 ms); 0 closes after the event-loop turn. */
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
  /**
   * Sends one batch; must settle with exactly one entry per item, in order, and never reject.
   * `openedAt` is the `performance.now()` time of the batch's first call.
   */
  readonly send: (items: readonly T[], openedAt: number) => Promise<readonly Settled<R>[]>;
}

interface Pending<T, R> {
  readonly item: T;
  readonly resolve: (value: R) => void;
  readonly reject: (error: unknown) => void;
}

export class Batcher<T, R> {
  readonly #options: BatcherOptions<T, R>;
  /** The Nagle rule above applies (default window and scheduler). */
  readonly #adaptive: boolean;
  #maxSize: number;
  #open: Pending<T, R>[] = [];
  #openedAt = 0;
  #cancelWindow: (() => void) | undefined;
  /** The open batch waits for the batches in flight to be answered. */
  #waitingForAnswer = false;
  readonly #inFlight = new Set<Promise<void>>();
  /** Batches sent and not yet answered (drops before their callers are resolved). */
  #unanswered = 0;
  /** Batches sent so far (for tests and stats). */
  batchesSent = 0;

  constructor(options: BatcherOptions<T, R>) {
    this.#options = options;
    this.#maxSize = options.maxSize;
    this.#adaptive = options.windowMs <= 0 && options.scheduler === realScheduler;
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
      if (this.#open.length === 0) this.#openedAt = performance.now();
      this.#open.push({ item, resolve, reject });
      if (this.#open.length >= this.#maxSize) this.flush();
      else if (this.#cancelWindow === undefined && !this.#waitingForAnswer) this.#openWindow();
    });
  }

  #openWindow(): void {
    if (this.#adaptive && this.#unanswered > 0) {
      this.#waitingForAnswer = true;
      return;
    }
    if (this.#options.windowMs <= 0 && this.#unanswered === 0) {
      let cancelled = false;
      queueMicrotask(() => {
        if (!cancelled) this.flush();
      });
      this.#cancelWindow = () => {
        cancelled = true;
      };
      return;
    }
    this.#cancelWindow = this.#options.scheduler(() => this.flush(), this.#options.windowMs);
  }

  /** Sends the open batch now, if any. */
  flush(): void {
    this.#cancelWindow?.();
    this.#cancelWindow = undefined;
    this.#waitingForAnswer = false;
    const batch = this.#open;
    if (batch.length === 0) return;
    this.#open = [];
    this.batchesSent++;
    this.#unanswered++;
    const sent = this.#run(batch, this.#openedAt);
    this.#inFlight.add(sent);
    void sent.finally(() => this.#inFlight.delete(sent));
  }

  /** Flushes and waits until every batch sent so far has been answered. */
  async drain(): Promise<void> {
    this.flush();
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  async #run(batch: readonly Pending<T, R>[], openedAt: number): Promise<void> {
    let settled: readonly Settled<R>[];
    try {
      settled = await this.#options.send(
        batch.map((p) => p.item),
        openedAt,
      );
    } catch (error) {
      settled = batch.map(() => ({ ok: false, error }));
    }
    // Before any caller runs again: a caller that calls straight back must see nothing in flight,
    // and what gathered behind this batch leaves before the callers add more to it.
    this.#unanswered--;
    if (this.#waitingForAnswer && this.#unanswered === 0) this.flush();
    batch.forEach((p, i) => {
      const s = settled[i];
      if (s === undefined) p.reject(new Error(`batch answered ${settled.length} of ${batch.length} calls`));
      else if (s.ok) p.resolve(s.value);
      else p.reject(s.error);
    });
  }
}
