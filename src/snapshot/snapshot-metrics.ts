// Prometheus metrics of the snapshots, read from the scheduler's figures when scraped.

import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Clock } from "../server/clock.ts";
import type { SnapshotStats } from "./snapshot-scheduler.ts";

export function registerSnapshotMetrics(registry: Registry, stats: SnapshotStats, clock: Clock): void {
  const registers = [registry];
  new Gauge({
    name: "tokenmesh_snapshot_age_seconds",
    help: "Seconds since the state on disk last caught up with this replica's state (a write, or nothing to write); grows without bound while writes fail.",
    registers,
    collect() {
      this.set(Math.max(0, clock() - stats.lastCurrentAtUs) / 1e6);
    },
  });
  const seen = { ok: 0, error: 0 };
  const writes = new Counter({
    name: "tokenmesh_snapshot_writes_total",
    help: "Snapshot files written, by result (ok, error).",
    labelNames: ["result"] as const,
    registers,
    collect() {
      if (stats.writesOk > seen.ok) this.inc({ result: "ok" }, stats.writesOk - seen.ok);
      if (stats.writesFailed > seen.error) this.inc({ result: "error" }, stats.writesFailed - seen.error);
      seen.ok = stats.writesOk;
      seen.error = stats.writesFailed;
    },
  });
  for (const result of ["ok", "error"]) writes.inc({ result }, 0);
  new Histogram({
    name: "tokenmesh_snapshot_duration_seconds",
    help: "Wall time of one snapshot write, from the first chunk built to the directory fsync.",
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
    collect() {
      for (const d of stats.durations) this.observe(d);
      stats.durations.length = 0;
    },
  });
  new Gauge({
    name: "tokenmesh_snapshot_bytes",
    help: "Bytes of the snapshot files on disk (the base and its increments).",
    registers,
    collect() {
      this.set(stats.bytesOnDisk);
    },
  });
}
