// Bytes on the replication sockets themselves, read from the kernel (`ss -ti`, tcp_info's
// bytes_sent and bytes_received) rather than from a proxy in the path: nothing is added to the
// replicas' work. This is TCP payload, so it holds gRPC, HTTP/2 and the acks flowing back,
// everything but the TCP/IP headers. Each connection is read on its client side (destination
// port = a replica's peer port) so it is counted once.

import { spawnSync } from "node:child_process";

/** Bytes per connection ("local->remote"), both directions summed; null when `ss` is missing. */
export type WireSnapshot = ReadonlyMap<string, number> | null;

export function wireSnapshot(peerPorts: readonly number[]): WireSnapshot {
  if (peerPorts.length === 0) return null;
  const filter = `( ${peerPorts.map((p) => `dport = :${p}`).join(" or ")} )`;
  const r = spawnSync("ss", ["-tinH", "state", "established", filter], { encoding: "utf8", timeout: 5000 });
  if (r.status !== 0 || typeof r.stdout !== "string") return null;
  const out = new Map<string, number>();
  // Each socket is a line with the addresses, then an indented line with its tcp_info.
  const lines = r.stdout.split("\n");
  let current: string | undefined;
  for (const line of lines) {
    const addresses = /^\s*\d+\s+\d+\s+(\S+)\s+(\S+)/.exec(line);
    if (addresses !== null && !line.includes("bytes_")) {
      current = `${addresses[1]}->${addresses[2]}`;
      continue;
    }
    if (current === undefined) continue;
    const sent = /bytes_sent:(\d+)/.exec(line);
    const received = /bytes_received:(\d+)/.exec(line);
    out.set(current, Number(sent?.[1] ?? 0) + Number(received?.[1] ?? 0));
    current = undefined;
  }
  return out;
}

/** Bytes moved between two snapshots, over connections present in both. */
export function wireBytes(before: WireSnapshot, after: WireSnapshot): number {
  if (before === null || after === null || after.size === 0) return Number.NaN;
  let total = 0;
  for (const [k, v] of after) {
    const b = before.get(k);
    if (b !== undefined) total += v - b;
  }
  return total;
}
