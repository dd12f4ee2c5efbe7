// Prometheus metrics of the mesh, read from the edge's counters and the core's statistics when
// scraped: peers connected and expected, deltas and bytes per peer, rejected peer messages,
// quarantined data, key parts ignored, replication lag, and the core's retirements, renewals and folds.

import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { MeshNode } from "./mesh-node.ts";
import { REJECT_REASONS } from "./mesh-stats.ts";

/**
 * Registers a counter whose value is read from `read()` at scrape time. The `initial` label sets
 * are exported at 0 before anything happened, so alerts on `increase()` see the first event.
 */
function derivedCounter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
  read: () => Iterable<[Record<L, string>, number]>,
  initial: readonly Record<L, string>[] = [],
): void {
  const last = new Map<string, number>();
  const counter = new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      for (const [labels, value] of read()) {
        const id = JSON.stringify(labels);
        const before = last.get(id) ?? 0;
        if (value > before) this.inc(labels, value - before);
        last.set(id, value);
      }
    },
  });
  for (const labels of initial) counter.inc(labels as Partial<Record<L, string>>, 0);
}

export function registerMeshMetrics(registry: Registry, mesh: MeshNode): void {
  const { stats, replica } = mesh;
  new Gauge({
    name: "tokenmesh_peers_connected",
    help: "Peers with an open outbound Merge stream past the handshake.",
    registers: [registry],
    collect() {
      this.set(stats.connected.size);
    },
  });
  new Gauge({
    name: "tokenmesh_peers_expected",
    help: "Peer addresses this replica dials (static and discovered by DNS), not counting itself; above peers_connected means a peer is down.",
    registers: [registry],
    collect() {
      let n = 0;
      for (const link of mesh.links()) if (!link.isSelf) n++;
      this.set(n);
    },
  });
  const perPeer = (field: "deltasSent" | "bytesSent" | "deltasReceived" | "bytesReceived") =>
    function* (): Iterable<[Record<"peer", string>, number]> {
      for (const [peer, c] of stats.peers) yield [{ peer }, c[field]];
    };
  derivedCounter(registry, "tokenmesh_peer_deltas_sent_total", "Deltas sent, per peer.", ["peer"], perPeer("deltasSent"));
  derivedCounter(registry, "tokenmesh_peer_bytes_sent_total", "Replication bytes sent, per peer.", ["peer"], perPeer("bytesSent"));
  derivedCounter(registry, "tokenmesh_peer_deltas_received_total", "Deltas received, per peer.", ["peer"], perPeer("deltasReceived"));
  derivedCounter(
    registry,
    "tokenmesh_peer_bytes_received_total",
    "Replication bytes received (deltas and acks), per peer.",
    ["peer"],
    perPeer("bytesReceived"),
  );
  derivedCounter(
    registry,
    "tokenmesh_peer_rejected_total",
    `Peer streams cut off, by reason (${REJECT_REASONS.join(", ")}).`,
    ["reason"],
    function* () {
      for (const [reason, n] of stats.rejected) yield [{ reason }, n];
    },
    REJECT_REASONS.map((reason) => ({ reason })),
  );
  derivedCounter(
    registry,
    "tokenmesh_peer_keys_ignored_total",
    "Key parts of peers' deltas skipped, not joined, by reason (removed_policy: a policy this replica's reload removed).",
    ["reason"],
    () => [[{ reason: "removed_policy" }, replica.stats.keysIgnored]],
    [{ reason: "removed_policy" }],
  );
  const core: [string, string, () => number][] = [
    [
      "tokenmesh_quarantined_entries_total",
      "Entries stamped too far ahead of this replica's clock: held, not applied, until the clock admits them.",
      () => replica.stats.quarantinedEntries,
    ],
    [
      "tokenmesh_deltas_untrusted_total",
      "Deltas whose watermarks were not applied because an earlier interval was missing.",
      () => replica.stats.deltasUntrusted,
    ],
    ["tokenmesh_retirements_total", "Silent incarnations this replica retired.", () => replica.stats.retirementsWritten],
    [
      "tokenmesh_renewals_total",
      "Times this process continued under a fresh incarnation after being retired.",
      () => replica.stats.renewals,
    ],
    ["tokenmesh_folds_total", "Key folds (old slots replayed into the prefix).", () => replica.stats.folds],
    [
      "tokenmesh_peer_resends_total",
      "Deltas that went back to a peer's last ack, because its acks had been silent for longer than usual or it reported a gap.",
      () => replica.stats.resends,
    ],
  ];
  for (const [name, help, read] of core) derivedCounter(registry, name, help, [], () => [[{}, read()]]);
  new Gauge({
    name: "tokenmesh_quarantined_now",
    help: "Replicated data currently held for this replica's clock.",
    registers: [registry],
    collect() {
      this.set(replica.stats.heldNow);
    },
  });
  new Histogram({
    name: "tokenmesh_replication_lag_seconds",
    help: "Age of replicated consumption when it arrives here (receiver clock minus the writer's slot stamp).",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 5],
    registers: [registry],
    collect() {
      for (const s of stats.lagSamples) this.observe(s);
      stats.lagSamples.length = 0;
    },
  });
}
