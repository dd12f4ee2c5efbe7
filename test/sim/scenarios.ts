// The acceptance scenarios of docs/design.md (section 6), by name. `scale` shrinks durations
// for the vitest suite (1 = the full figures npm run sim prints); bounds are the same formulas.

import fc from "fast-check";
import { LAWS } from "../crdt/law-properties.ts";
import { type Row, row } from "./figures.ts";
import { convergence, stateSize } from "./scenarios-converge.ts";
import { partition, restart } from "./scenarios-faults.ts";
import { burst, fiveReplicas, quietReplica, skew, twoSaturated } from "./scenarios-load.ts";
import { RELAY_SCENARIOS } from "./scenarios-relay.ts";
import { SHARE_SCENARIOS } from "./scenarios-share.ts";
import { shareRelayBurst } from "./scenarios-share-relay.ts";
import { STRICT_SCENARIOS } from "./scenarios-strict.ts";
import { strictRelays } from "./scenarios-strict-relays.ts";
import { payload, wireFaults } from "./scenarios-wire.ts";

export interface Scenario {
  readonly name: string;
  run(seed: number, scale: number): Row[];
  /**
   * Left out of the vitest suite, which must stay within its time budget on 2 cores: a row that
   * measures a cost (bytes per decision) rather than a property, whose code path another suite
   * row already runs under faults, or a share-mode variant whose mechanism a core test or the
   * suite's own share rows already check. `npm run sim` runs it.
   */
  readonly simOnly?: true;
}

/** Lattice laws as property tests on protocol-generated states: violations found (bound 0). */
function laws(seed: number, scale: number): Row[] {
  const runs = Math.max(100, Math.round(2_000 * scale));
  return LAWS.map((law) => {
    const out = fc.check(law.property, { numRuns: runs, seed }) as fc.RunDetails<unknown[]>;
    const failed = out.failed ? 1 : 0;
    const detail = out.failed
      ? `counterexample ${JSON.stringify(out.counterexample).slice(0, 300)}`
      : `${out.numRuns} protocol-generated cases`;
    return row(`laws: ${law.name}`, seed, failed, 0, "violations", failed === 0, detail);
  });
}

export const SCENARIOS: readonly Scenario[] = [
  { name: "laws", run: laws },
  { name: "convergence", run: convergence },
  { name: "two-saturated", run: twoSaturated },
  { name: "quiet-replica", run: quietReplica },
  { name: "five-replicas", run: fiveReplicas },
  { name: "burst", run: burst },
  { name: "skew-2s", run: skew("2s", 2_000_000) },
  { name: "skew-1h", run: skew("1h", 3_600_000_000) },
  { name: "restart", run: restart },
  { name: "partition", run: partition },
  { name: "state-size", run: stateSize },
  ...RELAY_SCENARIOS,
  ...STRICT_SCENARIOS,
  // Full size in npm run sim only: its strict and relay paths run in the suite's rows already.
  { name: "strict-relays", run: strictRelays, simOnly: true },
  ...SHARE_SCENARIOS,
  { name: "share-relay-burst", run: shareRelayBurst, simOnly: true },
  { name: "payload", run: payload, simOnly: true },
  { name: "wire-faults", run: wireFaults },
];
