import { twoSaturated, quietReplica, fiveReplicas, burst, skew } from "./scenarios-load.ts";
import { restart, partition } from "./scenarios-faults.ts";
import { convergence, stateSize } from "./scenarios-converge.ts";
const which = process.argv[2];
const fns: Record<string, (s: number, sc: number) => unknown> = { two: twoSaturated, quiet: quietReplica, five: fiveReplicas, burst, skew2: skew("2s", 2e6), skewh: skew("1h", 3.6e9), restart, partition, convergence, stateSize };
const t0 = performance.now();
console.log(JSON.stringify((fns[which!] as Function)(Number(process.argv[4] ?? 1), Number(process.argv[3] ?? 1)), null, 1), (performance.now() - t0).toFixed(0), "ms");
