// The replicated figures. Each is a row with `pass: null` until this module drives a 3-replica
// mesh (`tokenmesh local-mesh`, load on all three replicas, the mesh's metrics for bytes and
// lag), so the table shows what is still unmeasured instead of hiding it.

import { notMeasured, type Row } from "../lib/report.ts";
import type { Scenario } from "../lib/scenario.ts";

const WHY = "needs the mesh scenario (3-replica local mesh, load on all three); not written yet";

export const replication: Scenario = {
  id: "replication",
  phase: 1,
  async run(): Promise<readonly Row[]> {
    return [
      notMeasured("replication: throughput per replica, 3 replicas loaded", "calls/s", ">= 0.8x replica without peers", WHY),
      notMeasured("replication: bytes on the wire per admitted decision, 10k keys", "bytes", "<= 24 bytes", WHY),
      notMeasured("replication: lag p99, loopback", "ms", "<= flush interval + 5 ms", WHY),
      notMeasured("accuracy: hot key, 3 replicas saturated, 30 s", "tokens", "within 2% of policy rate x 30 s", WHY),
    ];
  },
};
