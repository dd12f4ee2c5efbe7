// The wire path under load and faults: what replication costs in bytes per admitted decision,
// and deltas large enough to be chunked, carried through loss, duplication, reordering and a
// partition. Both run on the bytes the mesh would send (wire-path.ts).

import type { LimitSpec } from "../../src/core/rate.ts";
import { Cluster } from "./cluster.ts";
import { type Row, row } from "./figures.ts";
import { Prng } from "./prng.ts";

/** Requests at `perSec` from `node`, each on a key drawn uniformly from `keys` ("u0".."u{keys-1}"). */
function uniformLoad(c: Cluster, node: string, keys: number, perSec: number, from: number, to: number, salt: number): void {
  const rng = new Prng(c.opts.seed * 977 + salt);
  const gap = 1_000_000 / perSec;
  const step = (t: number): void => {
    if (t >= to) return;
    c.queue.at(t, () => {
      if (c.loadOn) c.request(node, `u${rng.int(0, keys - 1)}`);
      step(t + Math.max(1, Math.round(gap * (0.5 + rng.next()))));
    });
  };
  step(from + Math.floor(rng.next() * gap));
}

/** Delta bytes sent by every node to every other over the whole run. */
function deltaBytes(c: Cluster): number {
  const names = [...c.nodes.keys()];
  return c.net.bytesBetween(names, names);
}

interface PayloadRun {
  readonly perDecision: number;
  readonly admittedPerSec: number;
  readonly whole: number;
  readonly entriesOnly: number;
}

/**
 * Three replicas in a full mesh (relay on, flush 5 ms, 1 ms links), every one loaded with
 * `perNode` requests/s over `keys` uniform keys: delta bytes (acks not counted, as the mesh's
 * tokenmesh_peer_bytes_sent_total) per admitted decision after a 1 s warm-up, with every
 * stream at protocol `version`.
 */
function payloadRun(seed: number, T: number, keys: number, perNode: number, limit: LimitSpec, version: number): PayloadRun {
  const warm = 1_000_000;
  const names = ["n0", "n1", "n2"];
  const c = new Cluster({
    seed,
    nodes: names.map((name) => ({ name, versions: { min: 1, max: version } })),
    link: { delayUs: 1_000, jitterUs: 500, loss: 0, duplicate: 0 },
    flushUs: 5_000,
    limit,
  });
  c.start();
  names.forEach((n, i) => {
    uniformLoad(c, n, keys, perNode, 0, T, i + 1);
  });
  c.run(warm);
  const bytes0 = deltaBytes(c);
  const admitted0 = c.admissions.length;
  const parts0 = [c.partsWhole, c.partsEntriesOnly];
  c.run(T);
  const admitted = c.admissions.length - admitted0;
  return {
    perDecision: (deltaBytes(c) - bytes0) / admitted,
    admittedPerSec: admitted / ((T - warm) / 1e6),
    whole: c.partsWhole - (parts0[0] as number),
    entriesOnly: c.partsEntriesOnly - (parts0[1] as number),
  };
}

function payloadRow(name: string, seed: number, T: number, keys: number, perNode: number, limit: LimitSpec, what: string): Row {
  const v1 = payloadRun(seed, T, keys, perNode, limit, 1);
  const v2 = payloadRun(seed, T, keys, perNode, limit, 2);
  const parts = (r: PayloadRun): string => `${r.whole} whole / ${r.entriesOnly} entries-only key parts`;
  return row(
    name,
    seed,
    v2.perDecision,
    1.01 * v1.perDecision,
    "bytes",
    v2.perDecision <= 1.01 * v1.perDecision,
    `bound: protocol 1 on the same load and seed, +1% (a part asked for whole costs a round trip); protocol 2 (headers only when changed) against protocol 1 (every part whole): ${v2.perDecision.toFixed(1)} vs ${v1.perDecision.toFixed(1)} bytes of deltas per admitted decision (${(100 * (1 - v2.perDecision / v1.perDecision)).toFixed(0)}% less); ${parts(v2)} vs ${parts(v1)}; ${Math.round(v2.admittedPerSec)} admitted/s; ${what}`,
  );
}

/** Replication payload per admitted decision at 3 replicas, protocol 2 against 1. */
export function payload(seed: number, scale: number): Row[] {
  const T = Math.max(3, Math.round(6 * scale)) * 1e6;
  return [
    payloadRow(
      "wire: payload per admitted decision, 10k keys, bench policy",
      seed,
      T,
      10_000,
      10_000,
      { capacity: 1000, refillTokens: 1000, refillPeriodUs: 1_000_000 },
      "10k uniform keys, 10k requests/s per replica, the bench's policy (1000, 1000/s): a key refills within a millisecond, so it is folded and collected between uses and every use starts it again, header and all",
    ),
    payloadRow(
      "wire: payload per admitted decision, 1k held keys",
      seed,
      T,
      1_000,
      2_000,
      { capacity: 100, refillTokens: 10, refillPeriodUs: 1_000_000 },
      "1k uniform keys, 2k requests/s per replica, limit (100, 10/s): keys stay held (in debt or refilling) between uses, so their headers can be acknowledged",
    ),
  ];
}

/**
 * The wire path under faults: three replicas on a line (n0-n1-n2: n1 relays), n2 an old build
 * (protocol 1 only), the smallest message cap the mesh accepts (64 KiB, so deltas of a few
 * hundred keys go in chunks), 5% loss, 5% duplicates, 20 ms jitter (reordering) and a 2 s cut
 * isolating n2, after which the backlog crosses in chunks. After quiescence every replica must
 * hold the same state, and no honest delta may be refused (a part without its header sent to
 * the old build would be).
 */
export function wireFaults(seed: number, scale: number): Row[] {
  const T = Math.max(4, Math.round(10 * scale)) * 1e6;
  const names = ["n0", "n1", "n2"];
  const c = new Cluster({
    seed,
    nodes: [{ name: "n0" }, { name: "n1" }, { name: "n2", versions: { min: 1, max: 1 } }],
    topology: [
      ["n0", "n1"],
      ["n1", "n2"],
    ],
    link: { delayUs: 5_000, jitterUs: 20_000, loss: 0.05, duplicate: 0.05 },
    flushUs: 5_000,
    limit: { capacity: 100, refillTokens: 10, refillPeriodUs: 1_000_000 },
    replica: { resendAfterUs: 200_000, retireAfterUs: 5_000_000 },
    maxMessageBytes: 65_536,
  });
  c.start();
  names.forEach((n, i) => {
    uniformLoad(c, n, 3_000, 3_000, 0, T, i + 11);
  });
  c.partition([["n0", "n1"], ["n2"]], T / 3, T / 3 + 2_000_000);
  c.run(T);
  c.quiesce();
  const texts = new Set(c.live().map((n) => n.replica?.canonical() ?? ""));
  let messages = 0;
  for (const a of names) for (const b of names) messages += c.net.traffic(a, b).deltaMessages;
  const detail = `${c.deltasSent} deltas in ${messages} messages (chunks of at most 32 KiB); key parts received: ${c.partsWhole} whole, ${c.partsEntriesOnly} entries-only; lost ${c.net.lost}, duplicated ${c.net.duplicated}, cut ${c.net.blocked}`;
  return [
    row("wire: distinct states after faults, chunks, a protocol 1 peer", seed, texts.size, 1, "states", texts.size === 1, detail),
    row(
      "wire: honest deltas refused (codec, chunks, versions)",
      seed,
      c.rejected,
      0,
      "deltas",
      c.rejected === 0 && messages > c.deltasSent && c.partsEntriesOnly > 0,
      c.rejected > 0
        ? (c.rejections[0] ?? "")
        : `and chunked (${messages} messages > ${c.deltasSent} deltas), entries-only parts seen (${c.partsEntriesOnly})`,
    ),
  ];
}
