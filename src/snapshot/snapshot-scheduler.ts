// Writes a replica's snapshots: every `snapshotInterval`, and once more at shutdown (after the
// last call was answered), so that a SIGTERM loses nothing and a kill -9 loses at most what
// changed within one interval. Each write is an increment (what changed since the last one)
// unless a base is due (snapshot-directory.ts). Writes never overlap; a failed one is counted,
// logged (at most every 30 s) and retried with a base, backing off to 30 s while it fails.
//
// Building chunks is the only synchronous work; the file is written asynchronously between
// chunks, so the longest event-loop turn a snapshot takes is one chunk (a few thousand keys).
// That turn and the total time spent building chunks are measured and exported.

import type { Logger } from "pino";
import type { Clock } from "../server/clock.ts";
import type { SnapshotDirectory } from "./snapshot-directory.ts";

export interface SnapshotExport {
  /** Position covered: the `from` of the next increment. */
  readonly to: number;
  /** Writing incarnation (mesh), or "". */
  readonly writer: string;
  readonly items: number;
  /** Built lazily, one chunk per pull. */
  readonly chunks: Iterable<Uint8Array>;
}

/** What a replica exports: a position that moves when its state changes, and chunks from one. */
export interface SnapshotSource {
  readonly kind: "mesh" | "standalone";
  position(): number;
  /** True when the state lost entries since the last base, which increments cannot express. */
  needsBase?(): boolean;
  /**
   * True when every change after `from` may be left off disk (a mesh replica's watermark rises:
   * the core's `onlyWatermarksSince`). The next increment still starts at `from`, so whatever
   * it skipped goes out with the next change that counts.
   */
  skippable?(from: number): boolean;
  /** Everything when `from` is 0, else what changed after `from`. */
  begin(from: number, nowUs: number): SnapshotExport;
}

/** Figures of the last writes, read by the metrics (snapshot-metrics.ts) and the bench. */
export interface SnapshotStats {
  /** Wall clock (us) of the last time the files on disk caught up with the state. */
  lastCurrentAtUs: number;
  writesOk: number;
  writesFailed: number;
  /** Durations (s) of writes since the last scrape. */
  readonly durations: number[];
  /** Of the last write: time spent building chunks (CPU on the event loop), and its longest turn. */
  lastBuildMs: number;
  lastLongestTurnMs: number;
  lastBytes: number;
  lastRole: "base" | "increment" | undefined;
  bytesOnDisk: number;
}

const MAX_BACKOFF_MS = 30_000;
const FAILURE_LOG_EVERY_MS = 30_000;
const SLOW_WRITE_MS = 250;

export class SnapshotScheduler {
  readonly stats: SnapshotStats;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #closed = false;
  #from: number;
  #failures = 0;
  #lastFailureLog = 0;
  #failuresUnlogged = 0;

  constructor(
    private readonly directory: SnapshotDirectory,
    private readonly source: SnapshotSource,
    private readonly intervalMs: number,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    // What is on disk (loaded, or nothing) is current as of now.
    this.#from = source.position();
    this.stats = {
      lastCurrentAtUs: clock(),
      writesOk: 0,
      writesFailed: 0,
      durations: [],
      lastBuildMs: 0,
      lastLongestTurnMs: 0,
      lastBytes: 0,
      lastRole: undefined,
      bytesOnDisk: directory.bytes,
    };
  }

  start(): void {
    this.#schedule(this.intervalMs);
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      void this.writeNow().then(() => this.#schedule(this.#failures === 0 ? this.intervalMs : this.#backoffMs()));
    }, ms);
    this.#timer.unref();
  }

  #backoffMs(): number {
    return Math.min(MAX_BACKOFF_MS, this.intervalMs * 2 ** Math.min(this.#failures, 16));
  }

  /** Writes what changed (or a base when due); waits for a write already under way first. */
  async writeNow(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
    const run = this.#write();
    this.#running = run;
    try {
      await run;
    } finally {
      this.#running = undefined;
    }
  }

  async #write(): Promise<void> {
    const role = this.directory.needsBase || this.source.needsBase?.() === true ? "base" : "increment";
    const nowUs = this.clock();
    // Nothing changed, or only what a snapshot leaves out: the files are as good as current.
    if (role === "increment" && (this.source.position() === this.#from || this.source.skippable?.(this.#from) === true)) {
      this.stats.lastCurrentAtUs = nowUs;
      return;
    }
    const started = performance.now();
    let buildMs = 0;
    let longest = 0;
    try {
      const exported = this.source.begin(role === "base" ? 0 : this.#from, nowUs);
      const timed = function* (chunks: Iterable<Uint8Array>): Generator<Uint8Array> {
        const it = chunks[Symbol.iterator]();
        for (;;) {
          const t0 = performance.now();
          const next = it.next();
          const spent = performance.now() - t0;
          buildMs += spent;
          longest = Math.max(longest, spent);
          if (next.done === true) return;
          yield next.value;
        }
      };
      const written = await this.directory.write(role, exported.writer, exported.items, nowUs, timed(exported.chunks));
      this.#from = exported.to;
      this.#failures = 0;
      const s = this.stats;
      s.lastCurrentAtUs = nowUs;
      s.writesOk++;
      s.lastBuildMs = buildMs;
      s.lastLongestTurnMs = longest;
      s.lastBytes = written.bytes;
      s.lastRole = role;
      s.bytesOnDisk = this.directory.bytes;
      if (s.durations.length < 10_000) s.durations.push((performance.now() - started) / 1000);
      // A slow write is worth an info line (its figures say why); the others are debug.
      const slow = performance.now() - started >= SLOW_WRITE_MS;
      if (slow || this.log.isLevelEnabled("debug")) {
        const fields = {
          role,
          items: exported.items,
          bytes: written.bytes,
          buildMs: Math.round(buildMs),
          longestTurnMs: Math.round(longest),
        };
        this.log[slow ? "info" : "debug"](fields, "snapshot written");
      }
    } catch (err) {
      this.#failed(err as Error, role);
    }
  }

  #failed(err: Error, role: "base" | "increment"): void {
    this.#failures++;
    this.stats.writesFailed++;
    // The change set an increment took is gone with it: the next write is a whole base.
    this.directory.restart();
    const now = performance.now();
    if (now - this.#lastFailureLog >= FAILURE_LOG_EVERY_MS) {
      this.log.error(
        { dataDir: this.directory.dir, role, err: err.message, failedSinceLastLog: this.#failuresUnlogged + 1 },
        "snapshot write failed; the state on disk is getting older (tokenmesh_snapshot_age_seconds)",
      );
      this.#lastFailureLog = now;
      this.#failuresUnlogged = 0;
    } else this.#failuresUnlogged++;
  }

  /** Stops the timer and writes once more: call after the last call was answered. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.writeNow();
    if (this.#failures === 0)
      this.log.info({ dataDir: this.directory.dir, bytesOnDisk: this.stats.bytesOnDisk }, "snapshot written at shutdown");
  }
}
