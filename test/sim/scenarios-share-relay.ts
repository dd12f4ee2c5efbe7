// Share mode across regions with relays per region (docs/design.md, section 9, "Share mode" and
// "Relays per region"): 3 regions x 3 replicas, 40 ms between regions, every replica idle until
// all 9 burst together on one key. A replica hears the demand of another region's writers only
// through the relays, so the second row fails if demand figures do not travel with the entries
// (before they did, each replica counted only its region's writers, and the relays those of the
// other relays: 2 or 4 of the 8 others).

import type { Cluster } from "./cluster.ts";
import { admittedBetween, type Row, row } from "./figures.ts";
import { C, R, WARM_US } from "./scenarios-load.ts";
import { CROSS_US, regionCluster } from "./scenarios-relay.ts";

const BURST_US = 150_000;
const BOUND = 1.25;
/** When the writers counted are read, from the burst's start: after shareProbeUs (250 ms), before shareStaleUs (500 ms) has passed since the burst's last figures. */
const COUNT_AT_US = 300_000;

/** Other writers a replica counts for `key`: its share of capacity is 1/(k + 1) in the share phase. */
function writersCounted(c: Cluster, name: string, key: string): number {
  const sh = c.node(name).replica?.shareOf(key);
  return sh === undefined || sh.phase !== "share" ? 0 : Math.round(1 / sh.capShare) - 1;
}

function burstAcrossRegions(seed: number, contention: "share" | "local"): { admitted: number; ideal: number; counted: number[] } {
  const { c, names } = regionCluster(seed, 3, { replica: { contention } });
  c.start();
  for (const n of names) c.load(n, "hot", 5_000, WARM_US, WARM_US + BURST_US, 0.3);
  // Past the probe window (a young run also counts peers not heard from yet), while the figures
  // of the burst are still current: what the figures alone say.
  c.run(WARM_US + COUNT_AT_US);
  const counted = names.map((n) => writersCounted(c, n, "hot"));
  c.run(WARM_US + BURST_US + 500_000);
  return { admitted: admittedBetween(c, WARM_US, WARM_US + BURST_US), ideal: C + (R * BURST_US) / 1e6, counted };
}

export function shareRelayBurst(seed: number): Row[] {
  const share = burstAcrossRegions(seed, "share");
  const local = burstAcrossRegions(seed, "local");
  const ratio = share.admitted / share.ideal;
  const fewest = Math.min(...share.counted);
  const others = share.counted.length - 1;
  return [
    row(
      "share: idle burst x9, 3 regions with relays",
      seed,
      ratio,
      BOUND,
      "x ideal",
      ratio <= BOUND,
      `first ${BURST_US / 1000}ms burst of 9 idle replicas (3 regions x 3, ${CROSS_US / 1000} ms between regions, relays on): ${share.admitted} admitted vs ideal ${share.ideal} (local mode, same seed: ${local.admitted}, ${(local.admitted / local.ideal).toFixed(2)}x; share mode before figures were relayed: 161, 1.01x)`,
    ),
    row(
      "share: idle burst x9, 3 regions, writers each replica counts",
      seed,
      fewest,
      others,
      "writers",
      fewest === others,
      `other writers counted ${COUNT_AT_US / 1000} ms after the burst began, per replica: ${share.counted.join("/")} (all ${others} must be; before figures were relayed: 4/2/2 in each region, 2 for a replica that is not its region's relay)`,
    ),
  ];
}
