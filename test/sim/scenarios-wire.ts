// The wire path under load and faults: what replication costs in bytes per admitted decision,
// and deltas large enough to be chunked, carried through loss, duplication, reordering and a
// partition. Both run on the bytes the mesh would send (wire-path.ts).

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

/**
 * Three replicas in a full mesh (relay on, flush 5 ms, 1 ms links), 10k uniform keys, every
 * replica loaded: replication payload (delta bytes, acks not counted, as the mesh's
 * tokenmesh_peer_bytes_sent_total) per admitted decision, after a 1 s warm-up.
 */
export function payload(seed: number, scale: number): Row[] {
  const T = Math.max(3, Math.round(6 * scale)) * 1e6;
  const warm = 1_000_000;
  const perNode = 10_000;
  const names = ["n0", "n1", "n2"];
  const c = new Cluster({
    seed,
    nodes: names.map((name) => ({ name })),
    link: { delayUs: 1_000, jitterUs: 500, loss: 0, duplicate: 0 },
    flushUs: 5_000,
    // Roomy enough that most requests are admitted: the figure is per admitted decision.
    limit: { capacity: 100, refillTokens: 100, refillPeriodUs: 1_000_000 },
  });
  c.start();
  names.forEach((n, i) => {
    uniformLoad(c, n, 10_000, perNode, 0, T, i + 1);
  });
  c.run(warm);
  const bytes0 = deltaBytes(c);
  const admitted0 = c.admissions.length;
  c.run(T);
  const bytes = deltaBytes(c) - bytes0;
  const admitted = c.admissions.length - admitted0;
  const per = bytes / admitted;
  return [
    row(
      "wire: payload per admitted decision, 3 replicas, 10k keys",
      seed,
      per,
      Number.POSITIVE_INFINITY,
      "bytes",
      true,
      `${bytes} delta bytes over ${(T - warm) / 1e6}s for ${admitted} admitted decisions (${Math.round(admitted / ((T - warm) / 1e6))}/s); ${c.deltasSent} deltas; key parts received: ${c.partsWhole} whole, ${c.partsEntriesOnly} entries only`,
    ),
  ];
}
