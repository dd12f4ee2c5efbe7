// Durable state for one process: at start, read the data directory and load what it holds into
// the replica (before anything is admitted); then hand back the scheduler that keeps it
// current. A snapshot that cannot be used is refused with a log line saying why, and the
// replica starts without it (a mesh replica then warms up from its peers): a bad file never
// stops a replica from starting. A data directory that cannot be created does.

import { mkdirSync } from "node:fs";
import type { Logger } from "pino";
import type { Replica } from "../core/crdt/index.ts";
import type { BucketStore } from "../limiter/bucket-store.ts";
import type { Clock } from "../server/clock.ts";
import { bucketSnapshotSource, loadBucketSnapshot } from "./bucket-snapshot.ts";
import { loadReplicaSnapshot, replicaSnapshotSource } from "./replica-snapshot.ts";
import { type LoadedFile, type ScanResult, SnapshotDirectory, type SnapshotIdentity, scanSnapshotDirectory } from "./snapshot-directory.ts";
import { SnapshotScheduler, type SnapshotSource } from "./snapshot-scheduler.ts";

export interface PersistenceOptions {
  readonly dataDir: string;
  readonly intervalMs: number;
  readonly identity: SnapshotIdentity;
  readonly clock: Clock;
  readonly log: Logger;
}

interface Loaded {
  readonly files: number;
  readonly items: number;
  readonly refused?: { readonly file: string; readonly reason: string };
  readonly extra?: Record<string, number>;
}

function open(
  options: PersistenceOptions,
  source: () => SnapshotSource,
  load: (files: readonly LoadedFile[], nowUs: number) => Loaded,
): SnapshotScheduler {
  const { dataDir, identity, clock, log } = options;
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (err) {
    throw new Error(`dataDir ${dataDir}: cannot create it: ${(err as Error).message}`);
  }
  const started = performance.now();
  const scan: ScanResult = scanSnapshotDirectory(dataDir, identity);
  const loaded = scan.files.length > 0 ? load(scan.files, clock()) : { files: 0, items: 0 };
  const refused = scan.refused ?? loaded.refused;
  const used = scan.files.slice(0, loaded.files);
  if (refused !== undefined) {
    const what = used.length === 0 ? "starting without a snapshot" : `loaded the ${used.length} file(s) before it`;
    const warm = identity.kind === "mesh" ? "; the replica warms up from its peers" : "";
    log.error({ dataDir, file: refused.file, reason: refused.reason }, `snapshot refused: ${refused.reason}; ${what}${warm}`);
  }
  if (used.length > 0) {
    const newest = Math.max(...used.map((f) => f.header.writtenAtUs));
    log.info(
      {
        dataDir,
        files: used.length,
        items: loaded.items,
        bytes: used.reduce((n, f) => n + f.bytes, 0),
        loadMs: Math.round(performance.now() - started),
        ageSeconds: Math.max(0, (clock() - newest) / 1e6),
        ...loaded.extra,
      },
      "snapshot loaded",
    );
  } else if (refused === undefined) log.info({ dataDir }, "no snapshot yet: starting empty");
  // A series loaded whole may go on with increments; anything refused starts a new base.
  const position = refused === undefined ? scan.position : undefined;
  return new SnapshotScheduler(new SnapshotDirectory(dataDir, identity, position), source(), options.intervalMs, clock, log);
}

/** A mesh replica: loads the snapshot into `replica` (not admitting yet); `onKey` sees every key loaded. */
export function openReplicaPersistence(options: PersistenceOptions, replica: Replica, onKey: (key: string) => void): SnapshotScheduler {
  return open(
    options,
    () => replicaSnapshotSource(replica),
    (files, nowUs) => {
      const r = loadReplicaSnapshot(replica, files, nowUs);
      for (const key of r.keys) onKey(key);
      return {
        files: r.files,
        items: replica.keyCount,
        ...(r.refused === undefined ? {} : { refused: r.refused }),
        extra: { retiredIncarnations: r.retired, heldItems: r.held, droppedItems: r.dropped },
      };
    },
  );
}

/** A standalone replica: loads the buckets into `store`. */
export function openBucketPersistence(options: PersistenceOptions, store: BucketStore): SnapshotScheduler {
  return open(
    options,
    () => bucketSnapshotSource(store),
    (files, nowUs) => {
      const r = loadBucketSnapshot(store, files, nowUs);
      return { files: r.files, items: r.buckets, ...(r.refused === undefined ? {} : { refused: r.refused }) };
    },
  );
}
