import { Cluster } from "./cluster.ts";
const names = ["n0", "n1", "n2", "n3", "n4"];
const topology = names.slice(1).map((n, i) => [names[i] as string, n] as const);
const T = 30e6;
const c = new Cluster({ seed: 1, nodes: names.map((name) => ({ name })), topology, link: { delayUs: 20_000, jitterUs: 30_000, loss: 0.1, duplicate: 0.1 }, flushUs: 5000, limit: { capacity: 10, refillTokens: 1000, refillPeriodUs: 1_000_000 }, replica: { resendAfterUs: 200_000, retireAfterUs: 2_000_000, warmupTimeoutUs: 1_000_000 } });
c.start();
const keys = { hot: 1_500, warm: 150, cold: 5 };
for (const n of names) for (const [k, rate] of Object.entries(keys)) c.load(n, k, rate, 0, T);
c.partition([["n0", "n1", "n2", "n3"], ["n4"]], T / 3, T / 3 + 5_000_000);
c.run(T);
c.quiesce();
const per = new Map<string, number>();
for (const a of c.admissions) if (a.key === "hot") per.set(a.inc, (per.get(a.inc) ?? 0) + a.cost);
const k = c.node("n0").replica!.keyState("hot")!;
for (const [inc, n] of per) {
  const known = Math.max(k.prefix.F.get(inc) ?? 0, k.K.get(inc) ?? 0, ...k.entries.filter(e => e.inc === inc).map(e => e.c1));
  console.log(inc, n, known, n - known);
}
console.log("lateCharged", k.prefix.lateCharged, "forgiven", k.prefix.forgiven, k.prefix.tau);
import { levelOfAllData } from "./figures.ts";
import { levelAt } from "../../src/core/crdt/index.ts";
console.log("L", levelAt(k, T).level / 1000, "L_all", levelOfAllData(c, "hot", T), "total", [...per.values()].reduce((a, b) => a + b, 0));
{
const list = c.admissions.filter((a) => a.key === "hot").sort((x, y) => x.slot - y.slot);
let level = 10000, t = 0, lost = 0;
const clampAt: number[] = [];
for (const a of list) { const grown = level + (a.slot - t); if (grown > 10000) { lost += grown - 10000; clampAt.push(a.slot); level = 10000; } else level = grown; t = a.slot; level -= 1000 * a.cost; }
console.log("L_all refill lost", lost / 1000, "clamp times", clampAt.slice(0, 5), clampAt.slice(-5), clampAt.length);
// per-node slot vs t lag
const lag = new Map<string, number>();
for (const a of list) lag.set(a.node, Math.max(lag.get(a.node) ?? 0, a.t - a.slot));
console.log(lag);
}
console.log(c.admissions.filter(a => a.key === "hot").slice(0, 8).map(a => [a.node, a.t, a.slot, a.inc.slice(0, 16)]));
