// What the scaling scenario runs: the layouts (replicas and regions), their fleets, the window,
// and what one layout's runs produced.

import type { FleetOptions } from "../lib/mesh.ts";
import type { FleetMeasurement } from "../lib/mesh-load.ts";
import type { ScenarioContext } from "../lib/scenario.ts";
import type { Accuracy } from "./replication-accuracy.ts";
import { FLUSH_MS } from "./replication-setup.ts";

export const CROSS_REGION_DELAY_MS = 40;
export const REGIONS = 3;
export const SIZES = [3, 6, 9] as const;
/** Seconds the fresh fleet sits idle before the load: long enough for several backed-off heartbeats. */
export const IDLE_S = 3;
/**
 * Seconds between the fleet being ready and the idle window, as in the replication idle row:
 * start-up work (JIT, first sync) settles and the heartbeat back-off (doubling from one flush to
 * its 1 s cap, about 2.5 s in all) reaches its idle pace. With 1 s here the window measured the
 * back-off still under way (2026-12-08: 17-25% of a core at 6 replicas and at 3x1, where the
 * replication idle row measures about 1% for a 3-replica mesh after 5 s).
 */
export const SETTLE_S = 5;

export interface Layout {
  readonly replicas: number;
  /** 1: every link direct; REGIONS: equal regions, delayed links between them. */
  readonly regions: number;
}

export const LAYOUTS: readonly Layout[] = [
  ...SIZES.map((replicas) => ({ replicas, regions: 1 })),
  ...SIZES.map((replicas) => ({ replicas, regions: REGIONS })),
];

export const layoutName = (l: Layout): string =>
  l.regions === 1 ? `${l.replicas} in 1 region` : `${l.replicas} in ${l.regions}x${l.replicas / l.regions}`;

export function fleetOptions(l: Layout): FleetOptions {
  return {
    replicas: l.replicas,
    // Several regions: relays per region (docs/design.md, "Relays per region"); one: a full mesh.
    mesh: { relay: true, relays: l.regions > 1, flushIntervalMs: FLUSH_MS },
    // 6 and 9 replicas on one core are starved of CPU (each idles at a sizable share of a
    // core today): with shedding on they refuse every call and no figure is left to read.
    noShedding: true,
    ...(l.regions > 1 ? { regions: { count: l.regions, crossRegionDelayMs: CROSS_REGION_DELAY_MS } } : {}),
  };
}

export const windowSeconds = (ctx: ScenarioContext): number => (ctx.settings.quick ? 3 : 6);

export interface LayoutResult {
  readonly layout: Layout;
  /** CPU share of one core per replica over the idle window. */
  readonly idleCores?: readonly number[];
  readonly light?: FleetMeasurement;
  /** Resident memory growth per replica from before to after the light run, bytes. */
  readonly rssGrowth?: readonly number[];
  readonly accuracy: Accuracy | string;
  /** Why the idle or light run has no figures. */
  readonly failure?: string;
}
