// Strict mode with relays per region (docs/design.md, section 9, "Strict mode with relays"):
// three regions of three replicas, relays on, 40 ms between regions, every replica saturating
// one strict key banked by a1. Deltas cross regions through the relays; escrow requests and
// grants do not: each goes on the sender's own link to the other end, whatever the lanes say
// (as at the edge, where every replica keeps a stream to every peer). Mid-run, region b's relay
// b1 is killed (failover to b2) and comes back as a new incarnation; later region c is cut off
// from the bank's region and from b for 3 s, so its holders cannot reach the bank at all.
// Rows: over-admission over every window (exactly 0), utilization, the time until the dead
// relay's share is granted again, the cut-off region spending only what it held, and the CRDT
// converging with strict spends relayed.

import { type Row, row } from "./figures.ts";
import { levelMismatches } from "./scenarios-converge.ts";
import { FLUSH_US, LIMIT, R } from "./scenarios-load.ts";
import { CROSS_US, LINK_DOWN_US, LOCAL, layout } from "./scenarios-relay.ts";
import { LEASE_US, MEASURE_FROM_US, overRow, watchReuse } from "./scenarios-strict.ts";
import { StrictCluster } from "./strict-cluster.ts";

const KILL_US = 6_000_000;
const RESTART_US = 8_000_000;
const CUT_FROM_US = 11_000_000;
const CUT_US = 3_000_000;

export function strictRelays(seed: number, scale: number): Row[] {
  const T = Math.max(18, Math.round(24 * scale)) * 1e6;
  const { names, regionOf } = layout(3);
  const s = new StrictCluster({
    seed,
    nodes: names.map((name) => ({ name })),
    link: LOCAL,
    flushUs: FLUSH_US,
    limit: LIMIT,
    // Relays replace flooding: the lanes say what crosses (scenarios-relay.ts).
    replica: { relay: false },
    regions: { regionOf, crossDelayUs: CROSS_US, linkDownAfterUs: LINK_DOWN_US },
    leaseUs: LEASE_US,
    bank: "a1",
  });
  s.start();
  for (const n of names) s.load(n, "k", 2_000, 0, T);
  s.kill("b1", KILL_US);
  s.restart("b1", RESTART_US);
  const far = names.filter((n) => regionOf.get(n) === "c");
  const heal = CUT_FROM_US + CUT_US;
  s.partition([names.filter((n) => !far.includes(n)), far], CUT_FROM_US, heal);

  const reuse = watchReuse(s, "a1", "k", KILL_US, RESTART_US);
  s.run(KILL_US - 1);
  reuse.arm(s.state("b1")?.id ?? "");
  // The premise: b1 is region b's relay (as the bank a1 elects it) before the kill, b2 after.
  const relayOfB = (): string | undefined => {
    const a1 = s.c.node("a1").replica;
    return a1 === undefined ? undefined : s.c.regions?.relayOf(a1, "b");
  };
  const relayBefore = relayOfB();
  s.run(RESTART_US - 1);
  const relayAfter = relayOfB();
  const failedOver = relayBefore === "b1" && relayAfter === "b2";
  s.run(CUT_FROM_US);
  // What region c's holders may still spend once cut off: their capacity plus their rate until
  // their leases run out (the strict-partition row's bound).
  let farHeld = 0;
  for (const n of far) {
    const h = s.state(n)?.holders.get("k");
    if (h === undefined) continue;
    const raw = s.c.raw(s.c.node(n));
    const sh = h.share(raw);
    farHeld += sh.capacityTokens + (R * (sh.rateParts / 10_000) * Math.max(0, sh.validUntilUs - raw)) / 1e6;
  }
  s.run(T);
  const { lastToDead, reusedAt } = reuse.times();
  const took = reusedAt - lastToDead;
  const bound = LEASE_US + FLUSH_US;
  const farAdmitted = far.reduce((sum, n) => sum + s.admittedBetween(CUT_FROM_US, heal, n), 0);
  const farLate = far.reduce((sum, n) => sum + s.admittedBetween(CUT_FROM_US + LEASE_US, heal, n), 0);
  const farEscrow = far.reduce((sum, n) => sum + (s.deniedAt.get(n)?.escrow ?? 0), 0);
  const u = s.admittedBetween(MEASURE_FROM_US, T) / ((R * (T - MEASURE_FROM_US)) / 1e6);
  const steady = s.admittedBetween(MEASURE_FROM_US, KILL_US) / ((R * (KILL_US - MEASURE_FROM_US)) / 1e6);
  const perNode = names.map((n) => s.admittedBetween(0, T, n)).join("/");
  const rows = [
    overRow(
      "relays 3x3 (relay b1 killed, region c cut off)",
      seed,
      s,
      `relays on, 40 ms between regions, bank a1; b1 killed at ${KILL_US / 1e6}s, back at ${RESTART_US / 1e6}s; region c cut off ${CUT_FROM_US / 1e6}-${heal / 1e6}s; escrow requests not sent for want of a link ${s.unsent}; per replica ${perNode}`,
    ),
    row(
      "strict relays: utilization",
      seed,
      u * 100,
      90,
      "% of r",
      u >= 0.9,
      `${s.admittedBetween(MEASURE_FROM_US, T)} admitted in ${(T - MEASURE_FROM_US) / 1e6}s after ${MEASURE_FROM_US / 1e6}s, failover and cut included (before the kill: ${(steady * 100).toFixed(1)}%); all 9 asked 2,000/s`,
    ),
    row(
      "strict relays: time to reuse the dead relay's share",
      seed,
      took / 1e6,
      bound / 1e6,
      "s",
      took <= bound && failedOver,
      `b's relay at a1: ${String(relayBefore)} before the kill, ${String(relayAfter)} after; from the bank's last grant to b1 (${((lastToDead - KILL_US) / 1e3).toFixed(0)}ms after the kill) to the first grant that gave its share to others (${((reusedAt - KILL_US) / 1e3).toFixed(0)}ms after the kill); bound L + flush = ${bound / 1e3}ms`,
    ),
    row(
      "strict relays: cut-off region beyond its holdings",
      seed,
      Math.max(0, farAdmitted - Math.floor(farHeld)),
      0,
      "tokens",
      farAdmitted <= farHeld && farLate === 0,
      `region c (no link to the bank; escrow is never relayed) admitted ${farAdmitted} while cut off, held ${farHeld.toFixed(1)} (capacity + rate until its leases end); after L: ${farLate}; denied for escrow there: ${farEscrow}`,
    ),
  ];
  const quietAfter = s.quiesce();
  const live = s.c.live();
  const texts = new Set(live.map((n) => n.replica?.canonical() ?? ""));
  const mismatches = levelMismatches(live, "k", s.now);
  rows.push(
    row(
      "strict relays: CRDT states after quiescence",
      seed,
      texts.size,
      1,
      "states",
      texts.size === 1 && mismatches === 0 && s.c.rejected === 0 && s.rejected === 0,
      `${live.length} live replicas, quiet after ${(quietAfter / 1e6).toFixed(2)}s; level disagreements ${mismatches}; deltas rejected ${s.c.rejected}, escrow messages rejected ${s.rejected}; relay changes ${s.c.regions?.relayChanges}`,
    ),
  );
  return rows;
}
